//! The JSON interface: the schemas in `docs/schemas/` are valid JSON Schema (2020-12), and
//! real output is checked against them by a schema validator (python3-jsonschema), not by
//! substrings. The sandbox tests of each command call [`validate`] on what it printed.
//! These tests are `#[ignore]`d with the reason (python3-jsonschema), so a plain `cargo test`
//! lists them as skipped; `scripts/test` (and CI) runs them, and there they fail without it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::harness::PYTHON;

/// Panics unless the validator can run (see [`crate::harness::require_python_module`]).
fn require_jsonschema() {
    crate::harness::require_python_module("jsonschema", "apt-get install python3-jsonschema");
}

/// The path of a schema of `docs/schemas/`.
fn schema(name: &str) -> String {
    format!(
        "{}/docs/schemas/{name}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Checks `json` against the schema `name` (`status`, `check`, `history`, `explain`): `Err` with the validator's
/// words when it does not conform. Panics when no validator is installed: only ignored tests
/// (run by `scripts/test`) validate.
pub(crate) fn validate(name: &str, json: &str) -> Result<bool, String> {
    require_jsonschema();
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())\n\
        errors = sorted(v.iter_errors(json.load(sys.stdin)), key=lambda e: list(e.path))\n\
        for e in errors: print('/'.join(str(p) for p in e.path) or '(top)', ':', e.message)\n\
        sys.exit(1 if errors else 0)\n";
    let mut child = Command::new(PYTHON)
        .args(["-c", script, &schema(name)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(json.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(true)
    } else {
        Err(format!(
            "{} does not conform to {}:\n{}{}",
            name,
            schema(name),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
#[ignore = "needs python3-jsonschema: scripts/test runs it"]
fn every_schema_is_valid_json_schema() {
    require_jsonschema();
    for name in ["status", "check", "history", "explain"] {
        let out = Command::new(PYTHON)
            .args([
                "-c",
                "import json, sys, jsonschema; jsonschema.Draft202012Validator.check_schema(json.load(open(sys.argv[1])))",
                &schema(name),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
#[ignore = "needs python3-jsonschema: scripts/test runs it"]
fn the_validator_refuses_output_that_breaks_the_schema() {
    // An event name the schema does not know, and a field too many: both said.
    let bad = r#"{"schema_version": 1, "cluster": "DC1", "node": "DC1-1", "table_exists": true,
        "events": [{"at": 1, "time": "1970-01-01T00:00:01Z", "link": null, "node": "DC1-1",
        "event": "exploded", "detail": "", "extra": 1}]}"#;
    let e = validate("history", bad).unwrap_err();
    assert!(e.contains("exploded") && e.contains("extra"), "{e}");
    let good = r#"{"schema_version": 1, "cluster": "DC1", "node": "DC1-1", "table_exists": false, "events": []}"#;
    assert_eq!(validate("history", good), Ok(true));
}

#[test]
#[ignore = "needs python3-jsonschema: scripts/test runs it"]
fn config_check_json_conforms_to_the_check_schema() {
    // With no server: the shipped minimal example, whatever its lines say. The checkout may
    // belong to another user than the one running the tests: --insecure-files, as for any
    // test rig (the file checks have their own tests).
    let example = crate::harness::repo().join("examples/minimal.toml");
    let o = crate::harness::pxcrm(&[
        "--insecure-files",
        "--config",
        example.to_str().unwrap(),
        "config",
        "check",
        "--format",
        "json",
    ]);
    assert!(o.stdout.starts_with('{'), "{}", o.all());
    validate("check", &o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", o.all()));
}
