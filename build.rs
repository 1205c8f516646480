//! Links the binary as a position-dependent executable: a cron run is a short process, and a
//! position-independent one spends about 1.5 ms of its start in relocations and page faults
//! (docs/benchmarks.md). Shared libraries, the stack and the heap are still placed at random;
//! only the executable's own code is not. `PXCRM_PIE=1 cargo build` keeps the default PIE.
fn main() {
    println!("cargo:rerun-if-env-changed=PXCRM_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if linux && std::env::var_os("PXCRM_PIE").is_none() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
