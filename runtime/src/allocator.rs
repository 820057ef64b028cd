//! The allocator of a hermetic process: jemalloc, with the options it runs with.
//!
//! A binary declares both with [`global_allocator!`](crate::global_allocator): the `hermetic`
//! command, and the benchmarks, so that their in-process figures are measured with the
//! allocator `hermetic run` has.
//!
//! # Why jemalloc
//!
//! Workers allocate what the reporting thread frees (events, keys); jemalloc takes those frees
//! without the lock that glibc's arenas make the worker wait on.
//!
//! # Why these options ([`OPTIONS`])
//!
//! - **`percpu_arena:percpu`:** one arena per CPU instead of jemalloc's four, chosen when
//!   each arena cost a fresh huge page (see below). With small pages it measures the same as
//!   four per CPU (10,000 steps at `--jobs 2`: 81.5 against 80.9 ms, medians of 30
//!   interleaved runs), and keeps the arenas, and their metadata, to two on two cores.
//! - **No transparent huge pages** (jemalloc's default, `thp:default`: it leaves the kernel's
//!   setting alone). Sessions 15 to 21 ran with `thp:always,metadata_thp:always`, which made
//!   a 10,000-step run 5 to 11% faster when runs follow each other within a few seconds: the
//!   huge pages the last run freed are still backed, and one 2 MiB fault (about 0.4 ms) costs
//!   less than the 512 small ones it replaces (about 1.5 µs each). After some seconds idle,
//!   which is how CI and a developer run `hermetic run`, it is the other way round. On a
//!   virtual machine that returns free memory to its host (free page reporting, as on the
//!   Firecracker machines this was measured on), a freed huge page goes back to the host
//!   within 5 to 10 seconds (it was still backed after 3), and faulting in a new one then
//!   costs 3.4 to 5.9 ms: the host backs its 512 pages one by one. A run takes a dozen huge
//!   pages, most of them for jemalloc's own metadata and barely used. After 5 s idle, a
//!   one-step run took 12.3 ms with small pages and 18.9 ms with huge ones (medians of 10
//!   interleaved runs; the slowest 18 and 56 ms), and the 10,000-step DAG at `--jobs 2` 106.7
//!   against 123.2 ms. `hermetic-bench --only idle` measures both cases. Small pages were no
//!   colder after 8 s idle than at once (1.5 to 1.8 µs each): the kernel hands out recently
//!   freed ones first, still backed.
//!
//! The options apply on Linux only: where `getcpu` is missing jemalloc would print an error
//! for `percpu_arena`. `_RJEM_MALLOC_CONF` in the environment still overrides them, as
//! jemalloc documents.

#[doc(hidden)]
pub use tikv_jemallocator::Jemalloc;

/// jemalloc's options for a hermetic process, NUL-terminated (see the module doc).
pub const OPTIONS: &[u8; 20] = b"percpu_arena:percpu\0";

/// Declares jemalloc as the global allocator, with [`OPTIONS`]. Use it once, in a binary's
/// root module.
#[macro_export]
macro_rules! global_allocator {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::allocator::Jemalloc = $crate::allocator::Jemalloc;

        /// Where jemalloc reads its options, before `main`: a strong definition of the weak
        /// symbol `malloc_conf` (`_rjem_malloc_conf` in the prefixed build that
        /// `tikv-jemallocator` links).
        ///
        /// # Safety
        ///
        /// jemalloc reads the symbol as a `const char *` to a NUL-terminated string that
        /// lives as long as the process. A `&'static [u8; N]` is a thin pointer to exactly
        /// that: immutable bytes ending in NUL (a test checks the terminator), and no other
        /// code in the process defines the symbol.
        #[cfg(target_os = "linux")]
        #[allow(
            unsafe_code,
            reason = "exporting the symbol jemalloc reads its options from"
        )]
        #[unsafe(export_name = "_rjem_malloc_conf")]
        static MALLOC_CONF: &[u8; $crate::allocator::OPTIONS.len()] = $crate::allocator::OPTIONS;
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_options_are_one_c_string() {
        let (last, options) = super::OPTIONS.split_last().expect("not empty");
        assert_eq!(*last, 0);
        assert!(!options.contains(&0));
        assert!(options.is_ascii());
    }
}
