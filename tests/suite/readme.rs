//! The examples of the README and of `docs/`, run as written: every `toml` block is a config
//! the binary accepts, and every command of a `sh` block in the operator's sections runs on a
//! node of a real sandbox cluster and succeeds, with `/etc/pxc-replication-manager.toml`
//! standing for that node's config. A section added with a broken example fails here, in
//! whichever file it moves to.

use crate::harness::repo;
use crate::lab::Sandbox;

/// The sections whose shell examples are run (their heading, without the `#`s).
const RUN_SECTIONS: &[&str] = &["Pausing for maintenance", "Metrics", "Option files"];

/// A fenced block of a document: its file, language, section, first line and text.
struct Block {
    file: String,
    lang: String,
    section: String,
    line: usize,
    text: String,
}

/// The README and every page of `docs/`.
fn documents() -> Vec<String> {
    let mut v = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    v.extend(docs);
    v
}

fn blocks() -> Vec<Block> {
    documents().iter().flat_map(|f| blocks_of(f)).collect()
}

fn blocks_of(file: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let mut out = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if let Some(fence) = line.strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => {
                    open = Some(Block {
                        file: file.to_string(),
                        lang: fence.trim().to_string(),
                        section: section.clone(),
                        line: i + 1,
                        text: String::new(),
                    })
                }
            }
            continue;
        }
        match &mut open {
            Some(b) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            None if raw.starts_with('#') => {
                section = raw.trim_start_matches('#').trim().to_string();
            }
            None => {}
        }
    }
    out
}

/// The example with its `/etc/...` files moved under `root` and made there: a password file
/// holds a password, a `.pem` file a real certificate (made with openssl).
fn with_files_under(text: &str, root: &std::path::Path) -> String {
    let mut out = text.to_string();
    for quoted in text.split('"').skip(1).step_by(2) {
        if !quoted.starts_with("/etc/") {
            continue;
        }
        let path = root.join(quoted.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if quoted.ends_with(".pem") {
            let key = root.join("example.key");
            let o = std::process::Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args(["-subj", "/CN=README example CA", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&path)
                .output()
                .expect("openssl runs");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        } else {
            std::fs::write(&path, "an example secret\n").unwrap();
        }
        out = out.replace(&format!("\"{quoted}\""), &format!("\"{}\"", path.display()));
    }
    out
}

#[test]
fn every_toml_example_in_the_readme_and_docs_is_a_config_the_binary_accepts() {
    let blocks: Vec<Block> = blocks().into_iter().filter(|b| b.lang == "toml").collect();
    assert!(
        blocks.len() >= 3,
        "the toml examples of the README and docs/ were not found"
    );
    for b in blocks {
        // The scenario format of `simulate` is shown in a toml block too.
        if b.section.contains("simulate") {
            continue;
        }
        // The files an example names and the config reads at once (a password, a CA) are
        // made under a temporary root, as an operator would have them.
        let root = tempfile::tempdir().unwrap();
        let text = with_files_under(&b.text, root.path());
        if let Err(e) =
            pxc_replication_manager::config::Config::parse(&text, std::path::Path::new(&b.file))
        {
            panic!(
                "{}:{} ({}): the example is refused: {e}",
                b.file, b.line, b.section
            );
        }
    }
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn the_operator_sections_shell_examples_work_as_written_on_a_real_node() {
    let sb = Sandbox::fresh(179, 180, 20);
    sb.settle();
    let config = sb.config("DC1-2");
    let bin = env!("CARGO_BIN_EXE_pxc-replication-manager");
    let bin_dir = std::path::Path::new(bin)
        .parent()
        .unwrap()
        .display()
        .to_string();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let mut ran = Vec::new();
    let mut daemons = Vec::new();
    let tmp = tempfile::tempdir().unwrap();
    for b in blocks() {
        if b.lang != "sh" || !RUN_SECTIONS.contains(&b.section.as_str()) {
            continue;
        }
        for (k, line) in b.text.lines().enumerate() {
            if !line.starts_with("pxc-replication-manager ") {
                continue;
            }
            // A daemon started in the background runs until the test stops it.
            if line.ends_with('&') {
                daemons.push(line.to_string());
                continue;
            }
            let mut command = line.replace("/etc/pxc-replication-manager.toml", &config);
            // An option file the example names (`--defaults-extra-file /etc/x.cnf`): an empty
            // `[client]` group, which changes nothing of the node's login.
            for word in line.split_whitespace() {
                if word.starts_with("/etc/") && word.ends_with(".cnf") {
                    let file = tmp.path().join(word.trim_start_matches("/etc/"));
                    std::fs::write(&file, "[client]\n").unwrap();
                    command = command.replace(word, &file.display().to_string());
                }
            }
            let o = std::process::Command::new("sh")
                .args(["-c", &command])
                .env("PATH", &path)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{}:{} ({}): `{line}` failed ({}):\n{}\n{}",
                b.file,
                b.line + 1 + k,
                b.section,
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            ran.push((b.section.clone(), line.to_string()));
        }
    }
    // Each section named above has at least one command that ran.
    for section in RUN_SECTIONS {
        assert!(
            ran.iter().any(|(s, _)| s == section),
            "no command of {section:?} ran (the section or its sh block is gone?): {ran:#?}"
        );
    }
    // The daemon example, with its metrics endpoint: it answers, then stops on SIGTERM.
    for line in daemons {
        let command = line
            .trim_end_matches('&')
            .replace("/etc/pxc-replication-manager.toml", &config);
        let port: u16 = command
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|p| p.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .expect("the daemon example listens on 127.0.0.1:PORT");
        let config_path = config.clone();
        let mut args: Vec<String> = command
            .split_whitespace()
            .skip(1)
            .map(String::from)
            .collect();
        // The node's cron-style runs above hold no lock now; the daemon takes it.
        assert!(args.contains(&config_path));
        let mut child = std::process::Command::new(bin)
            .args(args.drain(..))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let body = crate::harness::wait_until(
            "the README's daemon to serve /metrics",
            std::time::Duration::from_secs(30),
            || {
                use std::io::{Read, Write};
                let mut s =
                    std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
                s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
                    .map_err(|e| e.to_string())?;
                let mut text = String::new();
                s.read_to_string(&mut text).map_err(|e| e.to_string())?;
                if text.contains("pxcrm_up 1") {
                    Ok(text)
                } else {
                    Err(text)
                }
            },
        );
        assert!(body.contains("pxcrm_link_role{"), "{body}");
        // SAFETY: kill(2) on the daemon this test started.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "the daemon ended with {status}");
    }
}
