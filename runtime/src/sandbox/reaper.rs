//! Dropping finished stores off the thread that runs guests.
//!
//! Dropping a `Store` returns its instance, memory, table and fiber stack to the engine's
//! pooling allocator, which resets the memory's dirty pages (a `PAGEMAP_SCAN` ioctl and a
//! `memset` or `madvise`) and updates its slot index: 4.4 µs of the 8 µs a no-op guest takes in
//! `Sandbox::run` on a 2-core virtual machine (a raw wasmtime loop's store takes 4.0 µs of
//! its 6.8). None of it decides the step's result. In a pool's sandbox
//! (`Sandbox::for_workers`), a reaper thread does it, and the worker takes its next step at
//! once: 20,000 no-op steps at `--jobs 1` on 2 cores took 223 ms with the reaper and 294 ms
//! without. With a worker on every core it made runs slower: the drop has to be paid on a
//! busy core then, and handing it over costs on top: the batch's lock, waking the reaper, and
//! (probably the most) up to `2 × BATCH` stores holding slots, where without a reaper a lane
//! keeps reusing a few warm ones. 10,000 no-op steps at `--jobs 2` on 2 cores took 86.6 ms
//! without the reaper and 90.7 ms with it (medians of 40 interleaved runs; four batches, each
//! 1 to 6% faster without). So a pool's sandbox has a reaper only when a core is left over
//! for it ([`pays_off`]).
//!
//! What is handed over holds no file, stream or directory of the guest's: the sandbox drops
//! the guest's WASI context first, on the worker, before it measures the outputs (see
//! `run::Sandbox::run_in_lane`). The hand-off is bounded: a lane's stores wait in batches of
//! [`BATCH`], and a batch the reaper is not ready to take is dropped by the worker at once, so
//! a lane never has more than `2 × BATCH - 1` finished stores holding pool slots.
//! `engine::build_engine` gives the engines of a sandbox with a reaper `2 × BATCH` slots on
//! top of those their instances in flight need. A store whose guest's memory grew past
//! [`MAX_MEMORY`] is dropped at once, so that the waiting stores of a lane never keep more
//! than about 60 MiB of dirty pages resident: its memory reset costs more than the hand-off
//! saves anyway.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, PoisonError};

/// How many finished stores of one lane are handed over at once. A hand-off wakes the reaper
/// (a `futex` call on the worker, and a thread to schedule), which costs about as much as
/// dropping a store; in batches, the wake-up is paid once per batch. Batches of 16 instead of
/// 4 took 20,000 no-op steps at `--jobs 1` from 290 to 259 ms (median of 20 interleaved runs);
/// 32 gained nothing more.
pub(crate) const BATCH: usize = 16;

/// The largest peak linear memory of a store that goes to the reaper (2 MiB; a no-op Rust
/// guest uses about 1 MiB).
pub(crate) const MAX_MEMORY: u64 = 2 << 20;

/// Whether a pool of `workers` workers on `cores` cores gains from a reaper thread: only when
/// a core is left over for it (see the module doc).
pub(crate) fn pays_off(workers: u32, cores: usize) -> bool {
    (workers as usize) < cores
}

/// Something to drop elsewhere: a finished store.
pub(crate) type Garbage = Box<dyn Send>;

/// A lane's finished stores, waiting to make up a batch.
pub(crate) type Batch = Mutex<Vec<Garbage>>;

/// The sending end of a reaper thread; the thread exits when this is dropped.
#[derive(Debug)]
pub(crate) struct Reaper {
    /// A rendezvous channel: a batch is handed over only when the reaper waits for one, so a
    /// lane's stores not yet dropped are at most `BATCH - 1` waiting plus `BATCH` being
    /// dropped, within the `2 × BATCH` pool slots `engine::build_engine` adds for them.
    to_reaper: SyncSender<Vec<Garbage>>,
}

impl Reaper {
    /// Starts the reaper thread; `None` if it cannot be started (stores are then dropped where
    /// they finish, as without a reaper).
    pub fn start() -> Option<Self> {
        let (to_reaper, batches) = sync_channel::<Vec<Garbage>>(0);
        std::thread::Builder::new()
            .name("hermetic-reaper".into())
            .spawn(move || reap(&batches))
            .ok()?;
        Some(Self { to_reaper })
    }

    /// Adds `garbage` to `batch`; a full batch goes to the reaper, or is dropped here if the
    /// reaper is busy.
    pub fn dispose(&self, batch: &Batch, garbage: Garbage) {
        let full = {
            let mut waiting = batch.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.push(garbage);
            if waiting.len() < BATCH {
                return;
            }
            std::mem::take(&mut *waiting)
        };
        match self.to_reaper.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(full) | TrySendError::Disconnected(full)) => drop(full),
        }
    }
}

fn reap(batches: &Receiver<Vec<Garbage>>) {
    while let Ok(batch) = batches.recv() {
        drop(batch);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn stores_are_held_until_a_batch_is_full_then_all_are_dropped() {
        let reaper = Reaper::start().unwrap();
        let batch = Batch::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        for _ in 0..BATCH - 1 {
            reaper.dispose(&batch, Box::new(Counted(dropped.clone())));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        assert_eq!(batch.lock().unwrap().len(), BATCH - 1);
        reaper.dispose(&batch, Box::new(Counted(dropped.clone())));
        assert!(batch.lock().unwrap().is_empty());
        // On the reaper thread or here, but dropped either way.
        let deadline = Instant::now() + Duration::from_secs(10);
        while dropped.load(Ordering::SeqCst) < BATCH && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), BATCH);
    }

    #[test]
    fn a_reaper_pays_off_only_with_a_core_to_spare() {
        assert!(pays_off(1, 2));
        assert!(pays_off(3, 8));
        assert!(!pays_off(2, 2));
        assert!(!pays_off(4, 2));
        assert!(!pays_off(1, 1));
    }

    #[test]
    fn without_a_reaper_thread_a_full_batch_is_dropped_at_once() {
        let (to_reaper, gone) = sync_channel(0);
        drop(gone);
        let reaper = Reaper { to_reaper };
        let batch = Batch::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        for _ in 0..BATCH {
            reaper.dispose(&batch, Box::new(Counted(dropped.clone())));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), BATCH);
    }
}
