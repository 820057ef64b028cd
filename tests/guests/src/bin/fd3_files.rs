//! `fd3_blind`, linked with the file functions as well (it would look at `/d` if it were given
//! six arguments), so the sandbox mounts its directories and descriptor 3 is one of them.

#[path = "fd3_blind.rs"]
mod blind;

fn main() {
    if std::env::args().len() > 5 {
        let _ = std::fs::metadata("/d");
    }
    blind::main();
}
