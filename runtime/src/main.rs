//! The `hermetic` command. All logic lives in the library; see [`hermetic_runtime::cli`].

/// Workers allocate what the reporting thread frees (events, keys); jemalloc takes those frees
/// without the lock that glibc's arenas make the worker wait on.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    hermetic_runtime::cli::main()
}
