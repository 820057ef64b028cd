//! The `hermetic` command. All logic lives in the library; see [`hermetic_runtime::cli`].

hermetic_runtime::global_allocator!();

fn main() -> std::process::ExitCode {
    hermetic_runtime::cli::main()
}
