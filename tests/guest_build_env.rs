// Shared by `tests/build.rs` and `benches/` (each includes it as a module): both build wasm guests with an
// inner `cargo build` that must not inherit the outer cargo's settings.

/// Variables of the outer build that would change how the inner build compiles, where it puts its
/// output, or which compiler wrapper it runs (for example `clippy-driver` under `cargo clippy`).
pub const CLEARED_VARS: &[&str] = &[
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_DEP_INFO_BASEDIR",
    "CARGO_INCREMENTAL",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PRIMARY_PACKAGE",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
];

/// Prefixes of outer-build variables that configure profiles and targets.
pub const CLEARED_PREFIXES: &[&str] = &[
    "CARGO_PROFILE_",
    "CARGO_TARGET_",
    "CARGO_FEATURE_",
    "CARGO_CFG_",
];

/// Removes from `cmd`'s environment every variable of the outer cargo that [`CLEARED_VARS`] and
/// [`CLEARED_PREFIXES`] name.
pub fn clear_outer_build_env(cmd: &mut std::process::Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if CLEARED_VARS.contains(&key) || CLEARED_PREFIXES.iter().any(|p| key.starts_with(p)) {
            cmd.env_remove(key);
        }
    }
}
