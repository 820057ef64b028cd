//! Asking the CPU to bring memory into its caches before it is read.
//!
//! A pool of thousands of short steps reads each step's plan (its `PlannedStep`, its
//! definition, its name, its dependencies) once, microseconds after a guest and wasmtime have
//! gone through the caches. perf showed `Graph::start`'s own time mostly stalled on the first
//! loads of a step's `PlannedStep` and definition. A worker that takes a step names the next
//! one in its queue to [`Plan::prefetch`], and the lines arrive while the current step runs:
//! 10,000 no-op steps at `--jobs 2` ran 2–3% faster (two batches of 40 interleaved runs).
//!
//! [`Plan::prefetch`]: crate::plan::Plan::prefetch

/// The size of a cache line on every CPU hermetic runs on.
const LINE: usize = 64;

/// Prefetches the bytes of `value` into every cache level. A hint only: it changes no value
/// and cannot fault, whatever the address.
pub(crate) fn read<T: ?Sized>(value: &T) {
    bytes(std::ptr::from_ref(value).cast::<u8>(), size_of_val(value));
}

/// Prefetches the elements of `items`, at most `max_bytes` of them.
pub(crate) fn slice<T>(items: &[T], max_bytes: usize) {
    bytes(
        items.as_ptr().cast::<u8>(),
        size_of_val(items).min(max_bytes),
    );
}

fn bytes(start: *const u8, len: usize) {
    let mut offset = 0;
    while offset < len {
        line(start.wrapping_add(offset));
        offset += LINE;
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // reason: the prefetch instruction has no safe wrapper in `core`.
fn line(at: *const u8) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: `_mm_prefetch` is `unsafe` only because it needs SSE, which every x86_64 CPU
    // has (it is in the target's baseline). A prefetch reads nothing into the program and
    // never faults, whatever the address.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>()) };
}

#[cfg(not(target_arch = "x86_64"))]
fn line(_at: *const u8) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetching_changes_nothing_and_accepts_any_length() {
        let v: Vec<u64> = (0..1000).collect();
        read(&v[..]);
        slice(&v, 100);
        slice::<u8>(&[], 64);
        read("");
        assert_eq!(v.iter().sum::<u64>(), 999 * 1000 / 2);
    }
}
