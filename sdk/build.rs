//! Turns on the `hermetic_host_calls` cfg (the `hermetic_v1` import module, see `src/host.rs`)
//! when hermetic builds the task for `wasm32-wasip1`: it sets `HERMETIC_SDK_HOST_CALLS=1`. Any
//! other build writes progress and logs to stderr instead, so it runs under any WASI host.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(hermetic_host_calls)");
    println!("cargo::rerun-if-env-changed=HERMETIC_SDK_HOST_CALLS");
    let wanted = std::env::var("HERMETIC_SDK_HOST_CALLS").is_ok_and(|v| v == "1");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if wanted && arch == "wasm32" && os == "wasi" && env == "p1" {
        println!("cargo::rustc-cfg=hermetic_host_calls");
    }
}
