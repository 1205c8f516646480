//! Two jobs at build time:
//!
//! * Links the binary as a position-dependent executable: a cron run is a short process, and a
//!   position-independent one spends about 1.5 ms of its start in relocations and page faults
//!   (docs/benchmarks.md). Shared libraries, the stack and the heap are still placed at random;
//!   only the executable's own code is not. `PXCRM_PIE=1 cargo build` keeps the default PIE.
//! * Versions the built-in policy (`policies/default.rhai`, embedded by `src/policy`): the file
//!   must start its header with a `// policy-version: N` line (N a positive integer), or the
//!   build fails naming the file and line. The build also hashes the whole text (SHA-256), so an
//!   edited policy never shows the same version string as the shipped one. Both reach the code
//!   as `PXCRM_POLICY_VERSION`, `PXCRM_POLICY_SHA256` and its first 8 digits
//!   `PXCRM_POLICY_SHA256_SHORT` (see `policy::VERSION`).
use sha2::{Digest, Sha256};

const POLICY: &str = "policies/default.rhai";
const MARKER: &str = "// policy-version:";

fn main() {
    println!("cargo:rerun-if-env-changed=PXCRM_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if linux && std::env::var_os("PXCRM_PIE").is_none() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }

    println!("cargo:rerun-if-changed={POLICY}");
    let text = std::fs::read_to_string(POLICY)
        .unwrap_or_else(|e| fail(&format!("{POLICY}: cannot read it: {e}")));
    let version = policy_version(&text).unwrap_or_else(|e| fail(&e));
    let hash: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=PXCRM_POLICY_VERSION={version}");
    println!("cargo:rustc-env=PXCRM_POLICY_SHA256={hash}");
    println!("cargo:rustc-env=PXCRM_POLICY_SHA256_SHORT={}", &hash[..8]);
}

/// The N of the `// policy-version: N` line among the leading comment lines.
fn policy_version(text: &str) -> Result<u32, String> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with("//") {
            break;
        }
        if let Some(v) = line.strip_prefix(MARKER) {
            return match v.trim().parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!(
                    "{POLICY}:{}: `{MARKER}` must be followed by a positive integer, not {:?}",
                    i + 1,
                    v.trim()
                )),
            };
        }
    }
    Err(format!(
        "{POLICY}: no `{MARKER} N` line in the leading comment: the built-in policy needs a version (bump it on every change)"
    ))
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
