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
    let into_line = start.addr() % LINE;
    let first = start.wrapping_sub(into_line);
    for k in 0..lines(into_line, len) {
        line(first.wrapping_add(k * LINE));
    }
}

/// How many cache lines `len` bytes cover when the first is `into_line` bytes into its line:
/// a value that starts late in one line ends in the next.
fn lines(into_line: usize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (into_line + len).div_ceil(LINE)
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
    fn every_line_the_bytes_touch_is_counted() {
        assert_eq!(lines(0, 0), 0);
        assert_eq!(lines(63, 0), 0);
        assert_eq!(lines(0, 1), 1);
        assert_eq!(lines(0, 64), 1);
        assert_eq!(lines(0, 65), 2);
        // 8 bytes from offset 60 end in the next line.
        assert_eq!(lines(60, 8), 2);
        assert_eq!(lines(56, 8), 1);
        // A 296-byte `PlannedStep` 8 bytes into a line spans 5 lines; at 40 bytes in, 6.
        assert_eq!(lines(8, 296), 5);
        assert_eq!(lines(40, 296), 6);
    }

    #[test]
    fn any_value_and_length_can_be_prefetched() {
        let v: Vec<u64> = (0..1000).collect();
        read(&v[..]);
        read(&v[3..5]);
        slice(&v, 100);
        slice::<u8>(&[], 64);
        read("");
        read(&());
    }
}
