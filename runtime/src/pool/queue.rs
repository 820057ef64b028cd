//! The pool's ready queues: one per worker, one shared injector, and stealing between them.
//!
//! A step that becomes ready goes to the queue of the worker that released it (it finished the
//! step's last dependency, so the outputs the step reads are hot in that worker's caches, and
//! no other thread has to be woken to pick it up). Steps ready at the start go to the
//! injector. A worker takes the most urgent step of its own queue and the injector; with both
//! empty, it steals the most urgent step of another worker's queue, trying the others in an
//! order that comes from the run's seed.
//!
//! The queues are ordered by [`Ready`], not FIFO/LIFO deques (crossbeam-deque's): a step
//! released late with priority 10 must still start before a priority-1 step released early,
//! and a deque cannot reorder. The workers' queues are binary heaps; the injector, which takes
//! the roots all at once and then only retries, is a sorted vector ([`Sorted`]). Each queue has
//! its own lock, taken for a push or a pop only: a step runs for tens of microseconds at the
//! least, so the locks are almost never contended.

use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A ready step, ordered so that the max-heap pops the most urgent: by its `priority` (1–10),
/// higher first; then by its critical path, the longest chain of steps that depend on it,
/// itself included, longer first, so that the critical path never waits behind short work;
/// then by its index, earlier steps in the file first, which keeps a run's order stable.
///
/// All three are packed into one `u64` that compares in that order, so that the workers'
/// heaps (thousands of entries deep in a wide graph) sift 8-byte keys with one comparison
/// each: the priority in the top [`PRIORITY_BITS`], then the critical path, then the index
/// subtracted from the largest one. A workflow's text is at most 4 MiB, so it cannot hold
/// [`MAX_STEPS`] steps; a longer critical path than the field holds counts as the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ready(u64);

const PRIORITY_BITS: u32 = 4;
const PATH_BITS: u32 = 30;
const INDEX_BITS: u32 = 64 - PRIORITY_BITS - PATH_BITS;
/// One more than the largest step index a [`Ready`] holds.
pub(crate) const MAX_STEPS: usize = 1 << INDEX_BITS;
const LAST_INDEX: u64 = (1 << INDEX_BITS) - 1;

impl Ready {
    /// Step `index`, with its `priority` and `critical_path`.
    ///
    /// # Panics
    ///
    /// If `index` is [`MAX_STEPS`] or more, which no plan reaches.
    pub fn new(priority: u8, critical_path: u32, index: usize) -> Self {
        assert!(
            index < MAX_STEPS,
            "step index {index} beyond the ready queues' range"
        );
        let priority = u64::from(priority).min((1 << PRIORITY_BITS) - 1);
        let path = u64::from(critical_path).min((1 << PATH_BITS) - 1);
        Self(
            priority << (PATH_BITS + INDEX_BITS) | path << INDEX_BITS | (LAST_INDEX - index as u64),
        )
    }

    /// The plan index of the step.
    pub fn index(self) -> usize {
        (LAST_INDEX - (self.0 & LAST_INDEX)) as usize
    }

    /// Its priority and critical path, which come before the index in the order.
    pub fn urgency(self) -> u64 {
        self.0 >> INDEX_BITS
    }
}

/// Ready steps kept in order, the most urgent last: the injector's queue. A run's roots arrive
/// at once, in file order, which is already the queue's order for steps of equal priority and
/// critical path; after that only retries do, one at a time. Popping is then O(1), where a
/// binary heap of 20,000 roots sifted through 15 levels for each (5% of a worker's time
/// outside the sandbox, on no-op steps).
#[derive(Debug, Default)]
struct Sorted(Vec<Ready>);

impl Sorted {
    fn extend(&mut self, ready: impl IntoIterator<Item = Ready>) {
        self.0.extend(ready);
        // Ascending, so the most urgent is last. Sorted runs (what is here, and roots in file
        // order, which descend) make this close to linear.
        self.0.sort_unstable();
    }

    fn peek(&self) -> Option<&Ready> {
        self.0.last()
    }

    fn pop(&mut self) -> Option<Ready> {
        self.0.pop()
    }
}

/// Every ready queue of one run.
#[derive(Debug)]
pub(crate) struct Queues {
    /// Steps ready before any worker released them: the roots of the graph.
    injector: Mutex<Sorted>,
    /// One per worker: the steps that worker released. Its owner pops from it first; the
    /// others steal from it when they have nothing else.
    locals: Vec<Mutex<BinaryHeap<Ready>>>,
    /// Steps waiting for their next attempt, with the time it may start. They move to the
    /// injector when a worker looks for work after that time; idle workers sleep no longer
    /// than until the earliest of them. Retries are rare, so a list is enough.
    delayed: Mutex<Vec<(Instant, Ready)>>,
    /// Bumped on every push and on [`Queues::wake_all`]. An idle worker reads it before it
    /// looks for work and sleeps only if it is unchanged, so no push is ever slept through.
    generation: Mutex<u64>,
    /// Where idle workers sleep.
    wakeup: Condvar,
    /// Whether idle workers steal. Off only to measure what stealing is worth: with it off,
    /// the roots are dealt out round-robin and each worker runs what it was dealt and what
    /// that released (static partitioning).
    stealing: bool,
}

/// How long an idle worker sleeps before it looks again without being woken: a safety net
/// only, every push wakes a sleeper.
const IDLE_TIMEOUT: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a queue is locked cannot leave a heap half-updated (`push` and `pop` are
    // the only operations), so a poisoned lock is still sound to use.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Queues {
    /// Queues for `workers` workers that steal from each other.
    #[cfg(test)]
    pub fn new(workers: usize) -> Self {
        Self::with_stealing(workers, true)
    }

    /// Queues for `workers` workers; `stealing: false` partitions the work statically.
    pub fn with_stealing(workers: usize, stealing: bool) -> Self {
        Self {
            injector: Mutex::new(Sorted::default()),
            locals: (0..workers)
                .map(|_| Mutex::new(BinaryHeap::new()))
                .collect(),
            delayed: Mutex::new(Vec::new()),
            generation: Mutex::new(0),
            wakeup: Condvar::new(),
            stealing,
        }
    }

    /// Adds the steps ready at the start: to the injector, or without stealing dealt out to
    /// the workers round-robin.
    pub fn start(&self, roots: Vec<Ready>) {
        if self.stealing {
            return self.inject(roots);
        }
        let n = self.locals.len();
        for (k, ready) in roots.into_iter().enumerate() {
            lock(&self.locals[k % n]).push(ready);
        }
        self.wake_all();
    }

    /// Queues `ready` once `not_before` has passed.
    pub fn delay(&self, ready: Ready, not_before: Instant) {
        lock(&self.delayed).push((not_before, ready));
        // A sleeper must shorten its sleep to the new deadline.
        self.wake_all();
    }

    /// Moves the delayed steps that are due to the injector.
    fn promote_due(&self) {
        let mut delayed = lock(&self.delayed);
        if delayed.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        delayed.retain(|(at, ready)| {
            let keep = *at > now;
            if !keep {
                due.push(*ready);
            }
            keep
        });
        drop(delayed);
        if !due.is_empty() {
            lock(&self.injector).extend(due);
        }
    }

    /// How long an idle worker may sleep: until the earliest delayed step, at most
    /// [`IDLE_TIMEOUT`].
    fn sleep_limit(&self) -> Duration {
        let now = Instant::now();
        lock(&self.delayed)
            .iter()
            .map(|(at, _)| at.saturating_duration_since(now))
            .min()
            .map_or(IDLE_TIMEOUT, |d| d.min(IDLE_TIMEOUT))
    }

    /// Adds steps to the injector.
    pub fn inject(&self, ready: impl IntoIterator<Item = Ready>) {
        let mut pushed = 0;
        lock(&self.injector).extend(ready.into_iter().inspect(|_| pushed += 1));
        self.notify(pushed);
    }

    /// Adds steps that `worker` released to its own queue.
    pub fn push_local(&self, worker: usize, ready: &[Ready]) {
        if ready.is_empty() {
            return;
        }
        lock(&self.locals[worker]).extend(ready.iter().copied());
        // The pusher takes one of them itself; the rest are for idle workers.
        self.notify(ready.len() - 1);
    }

    /// The most urgent step for `worker`: from its own queue or the injector, whichever holds
    /// the more urgent one, else stolen from the other workers in `victims` order.
    pub fn pop(&self, worker: usize, victims: impl Iterator<Item = usize>) -> Option<Ready> {
        self.promote_due();
        // Lock order: a worker's own queue, then the injector; a steal holds one lock only.
        let mut own = lock(&self.locals[worker]);
        let mut injector = lock(&self.injector);
        match (own.peek(), injector.peek()) {
            (None, None) => {
                drop((own, injector));
                self.steal(worker, victims)
            }
            (Some(a), Some(b)) if a < b => injector.pop(),
            (Some(_), _) => own.pop(),
            (None, Some(_)) => injector.pop(),
        }
    }

    /// The most urgent step in `worker`'s own queue, which it will most likely take next:
    /// for prefetching, not a claim on it.
    pub fn next_own(&self, worker: usize) -> Option<usize> {
        lock(&self.locals[worker]).peek().map(|r| r.index())
    }

    fn steal(&self, worker: usize, victims: impl Iterator<Item = usize>) -> Option<Ready> {
        if !self.stealing {
            return None;
        }
        victims
            .filter(|&v| v != worker)
            .find_map(|v| lock(&self.locals[v]).pop())
    }

    /// The current generation; pass it to [`Queues::sleep`].
    pub fn generation(&self) -> u64 {
        *lock(&self.generation)
    }

    /// Sleeps until something is pushed or [`Queues::wake_all`] is called, unless that already
    /// happened since `seen` was read.
    pub fn sleep(&self, seen: u64) {
        let limit = self.sleep_limit();
        let generation = lock(&self.generation);
        if *generation == seen && !limit.is_zero() {
            let _ = self.wakeup.wait_timeout(generation, limit);
        }
    }

    /// Wakes every sleeping worker (the run is over or interrupted).
    pub fn wake_all(&self) {
        *lock(&self.generation) += 1;
        self.wakeup.notify_all();
    }

    /// Wakes up to `n` sleepers for `n` new steps.
    fn notify(&self, n: usize) {
        if n == 0 {
            return;
        }
        *lock(&self.generation) += 1;
        if n == 1 {
            self.wakeup.notify_one();
        } else {
            self.wakeup.notify_all();
        }
    }
}

/// The order in which a worker tries the others' queues when it steals: a rotation that starts
/// at a pseudo-random worker drawn from the run's seed (splitmix64), so that thieves spread
/// out and a seeded run makes the same choices.
#[derive(Debug, Clone)]
pub(crate) struct StealOrder {
    state: u64,
    workers: usize,
}

impl StealOrder {
    /// The steal order of worker `worker` of `workers`, from `seed`.
    pub fn new(seed: u64, worker: usize, workers: usize) -> Self {
        Self {
            state: seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            workers: workers.max(1),
        }
    }

    /// The victims of the next steal, each worker once.
    pub fn next_round(&mut self) -> impl Iterator<Item = usize> + use<> {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = super::rng::splitmix64(self.state);
        let n = self.workers;
        let start = (z % n as u64) as usize;
        (0..n).map(move |k| (start + k) % n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(priority: u8, critical_path: u32, index: usize) -> Ready {
        Ready::new(priority, critical_path, index)
    }

    /// The packed key orders as (priority, critical path, earlier index) does, and gives its
    /// index back.
    #[test]
    fn ready_orders_by_priority_then_critical_path_then_file_order() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let edges = [0, 1, (1 << 30) - 1, MAX_STEPS - 1];
        let entries: Vec<(u8, u32, usize)> = (0..400)
            .map(|k| {
                let r = next();
                let index = if k < 4 { edges[k] } else { r as usize % 50 };
                (1 + (r >> 8) as u8 % 10, (r >> 16) as u32 % 6, index)
            })
            .collect();
        for &(p, c, i) in &entries {
            assert_eq!(ready(p, c, i).index(), i);
            for &(q, d, j) in &entries {
                let tuple = (p, c, std::cmp::Reverse(i)).cmp(&(q, d, std::cmp::Reverse(j)));
                assert_eq!(
                    ready(p, c, i).cmp(&ready(q, d, j)),
                    tuple,
                    "{p} {c} {i} / {q} {d} {j}"
                );
            }
        }
        // A critical path longer than the field holds counts as the longest.
        assert!(ready(5, u32::MAX, 0) > ready(5, (1 << 30) - 2, 0));
        assert_eq!(ready(5, u32::MAX, 3), ready(5, 1 << 30, 3));
    }

    #[test]
    fn a_worker_takes_the_most_urgent_of_its_queue_and_the_injector() {
        let q = Queues::new(2);
        q.inject([ready(5, 1, 0), ready(1, 9, 1)]);
        q.push_local(0, &[ready(5, 2, 2), ready(10, 1, 3)]);
        let order: Vec<usize> = std::iter::from_fn(|| q.pop(0, 0..2).map(Ready::index)).collect();
        // Priority first, then critical path, then file order.
        assert_eq!(order, [3, 2, 0, 1]);
    }

    #[test]
    fn ties_go_to_the_earlier_step() {
        let q = Queues::new(1);
        q.inject([ready(5, 1, 7), ready(5, 1, 2), ready(5, 1, 4)]);
        let order: Vec<usize> = std::iter::from_fn(|| q.pop(0, 0..1).map(Ready::index)).collect();
        assert_eq!(order, [2, 4, 7]);
    }

    #[test]
    fn an_idle_worker_steals_the_most_urgent_step_of_another() {
        let q = Queues::new(3);
        q.push_local(1, &[ready(1, 1, 0), ready(3, 1, 1)]);
        q.push_local(2, &[ready(9, 1, 2)]);
        // Victims tried in the order given: worker 1 first.
        assert_eq!(q.pop(0, [1, 2].into_iter()).map(Ready::index), Some(1));
        assert_eq!(q.pop(0, [2, 1].into_iter()).map(Ready::index), Some(2));
        assert_eq!(q.pop(0, [0].into_iter()), None);
    }

    #[test]
    fn steal_order_visits_every_worker_once_and_replays_from_the_seed() {
        let rounds = |seed| {
            let mut order = StealOrder::new(seed, 1, 4);
            (0..8)
                .map(|_| order.next_round().collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        for round in rounds(7) {
            let mut sorted = round.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3]);
        }
        assert_eq!(rounds(7), rounds(7));
        assert_ne!(rounds(7), rounds(8));
    }

    #[test]
    fn without_stealing_each_worker_runs_what_it_was_dealt() {
        let q = Queues::with_stealing(2, false);
        q.start(vec![ready(5, 1, 0), ready(5, 1, 1), ready(5, 1, 2)]);
        let mine: Vec<usize> = std::iter::from_fn(|| q.pop(0, 0..2).map(Ready::index)).collect();
        assert_eq!(mine, [0, 2]);
        assert_eq!(q.pop(0, 0..2), None, "worker 1's step is not stolen");
        assert_eq!(q.pop(1, 0..2).map(Ready::index), Some(1));
    }

    #[test]
    fn a_delayed_step_is_popped_only_once_due() {
        let q = Queues::new(1);
        q.delay(ready(5, 1, 0), Instant::now() + Duration::from_millis(30));
        assert_eq!(q.pop(0, 0..1), None);
        let started = Instant::now();
        while q.pop(0, 0..1).is_none() {
            q.sleep(q.generation());
        }
        assert!(started.elapsed() >= Duration::from_millis(25));
    }

    #[test]
    fn a_sleeper_does_not_miss_a_push_made_after_it_looked() {
        let q = std::sync::Arc::new(Queues::new(2));
        let seen = q.generation();
        q.push_local(1, &[ready(1, 1, 0), ready(1, 1, 1)]);
        // Returns at once: the generation moved since `seen`.
        let started = Instant::now();
        q.sleep(seen);
        assert!(started.elapsed() < IDLE_TIMEOUT);
    }
}
