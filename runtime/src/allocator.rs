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
//! - **`thp:always`, `metadata_thp:always`:** jemalloc asks the kernel for transparent huge
//!   pages (`madvise(MADV_HUGEPAGE)`) for its heap and its own metadata. A run keeps a few
//!   records for every step (its checked definition, its plan, its metrics), so a large run
//!   faults in many fresh pages, and on a virtual machine a 4 KiB page costs about 3 µs to
//!   fault in. A 10,000-step run at `--jobs 2` took about 5,700 page faults with small pages,
//!   1,500 with huge ones; it ran 9% faster, and 20,000 flat steps at `--jobs 1` 5% faster
//!   (README, "Session 15"). Where the kernel's THP setting is `always` this changes nothing;
//!   where it is `never`, jemalloc keeps small pages.
//! - **`percpu_arena:percpu`:** one arena per CPU instead of jemalloc's four. Each arena a
//!   run touches costs a fresh huge page, so with four per CPU a one-step run was 1.4 ms
//!   slower (8 ms); with one per CPU it is as fast as with small pages.
//!
//! The cost is resident memory: 9 to 14 MB more at the peak of a run (17 → 26 MB for one
//! step, 47 → 61 MB for 20,000).
//!
//! The options apply on Linux only: other systems have no THP to ask for, and where `getcpu`
//! is missing jemalloc would print an error for `percpu_arena`. `_RJEM_MALLOC_CONF` in the
//! environment still overrides them, as jemalloc documents.

#[doc(hidden)]
pub use tikv_jemallocator::Jemalloc;

/// jemalloc's options for a hermetic process, NUL-terminated (see the module doc).
pub const OPTIONS: &[u8; 51] = b"thp:always,metadata_thp:always,percpu_arena:percpu\0";

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
