//! What a run measured about itself, computed from its timed events: for each step its queue
//! wait (pickup latency), run time, fuel and peak memory; for the run the step latency
//! percentiles, the success rate, the ready-queue depth over time and the workers' utilization.
//!
//! Everything here is derived from the events the pool reports, so `--json` consumers and the
//! run journal can recompute it, and measuring costs the pool nothing extra.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::events::{Event, StepStatus, micros};

/// One dispatch of a step on a worker: a slice of the worker's time.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Slice {
    pub step: String,
    pub attempt: u32,
    pub worker: usize,
    /// When the step became ready, in microseconds since the run started.
    pub ready_us: u64,
    /// When the worker took it.
    pub start_us: u64,
    /// When this dispatch ended (the step finished, or the attempt failed and will retry).
    pub end_us: u64,
}

/// A step's figures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StepMetrics {
    pub step: String,
    pub status: StepStatus,
    pub cached: bool,
    pub attempts: u32,
    /// Time in the ready queues before its first dispatch (pickup latency).
    pub queue_wait_us: u64,
    /// Time on workers, over all its dispatches.
    pub run_us: u64,
    /// From first ready to final state: queue wait, run time, and any retry backoff.
    pub latency_us: u64,
    pub fuel_used: u64,
    pub peak_memory: u64,
}

/// Percentiles of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (all zero when empty).
    ///
    /// Selected rather than sorted, in linear time: a run computes three of these over every
    /// step after its last one. The highest rank first, since each selection leaves the values
    /// below it in front of it, where the next rank is.
    pub fn of(mut values: Vec<u64>) -> Self {
        let Some(&max) = values.iter().max() else {
            return Self::default();
        };
        let n = values.len();
        let index = |p: f64| (((p / 100.0) * n as f64).ceil() as usize).clamp(1, n) - 1;
        let (i99, i90, i50) = (index(99.0), index(90.0), index(50.0));
        let p99 = *values.select_nth_unstable(i99).1;
        let p90 = *values[..=i99].select_nth_unstable(i90).1;
        let p50 = *values[..=i90].select_nth_unstable(i50).1;
        Self { p50, p90, p99, max }
    }
}

/// A run's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RunMetrics {
    /// Wall time of the run.
    pub wall_us: u64,
    /// Worker threads.
    pub workers: usize,
    /// Steps that reached a final state, in the order they did.
    pub steps: Vec<StepMetrics>,
    /// Every dispatch, in the order they started: the run's trace. Not written to
    /// `summary.json`, where it would be as big as the rest together: `events.jsonl` has every
    /// dispatch, and `--trace` draws them.
    #[serde(skip)]
    pub slices: Vec<Slice>,
    /// Step latency (ready to final state) of the steps that were dispatched.
    pub latency_us: Percentiles,
    /// Queue wait (ready to dispatch) of every dispatch: it includes waiting for a worker to
    /// be free, so it grows with the backlog.
    pub queue_wait_us: Percentiles,
    /// Pickup latency of every dispatch: from the moment the step was ready *and* its worker
    /// was free (it had finished its previous dispatch, or the run started) to the dispatch.
    /// This is the scheduler's own delay, without the backlog.
    pub pickup_us: Percentiles,
    /// Succeeded steps over steps that ran or were served from the cache (1 when none did).
    pub success_rate: f64,
    /// Busy worker time over `workers × wall time`.
    pub utilization: f64,
    /// Ready steps waiting for a worker over time: `(µs since start, depth)`, the deepest
    /// point of each of at most [`DEPTH_SAMPLES`] equal intervals.
    pub queue_depth: Vec<(u64, usize)>,
}

/// How many points [`RunMetrics::queue_depth`] keeps.
pub const DEPTH_SAMPLES: usize = 100;

/// Collects a run's events as they are reported. It runs on the thread that reports events,
/// beside the workers, so each event costs it one lookup by step name.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// What each dispatched step without a final state has accumulated so far, by step name.
    /// A step leaves it when it finishes, so that it holds only the steps in flight (or
    /// waiting for a retry): a map of every step would be kept to the end of the run, a
    /// hundred bytes per step of memory touched for the first time, each fresh page a page
    /// fault (about 3 µs on a virtual machine).
    dispatched: HashMap<String, Dispatched, foldhash::fast::RandomState>,
    /// Each worker's dispatches, as they ended, by worker. A worker's dispatches end in the
    /// order they started, so the run's are merged rather than sorted at the end. For the
    /// two workers' interleaved dispatches of 10,000 steps, computing the metrics took 0.9 ms
    /// instead of 1.3 (medians of 25 runs of each).
    slices: Vec<Vec<Slice>>,
    /// Steps that reached a final state, and whether each was dispatched (a skipped or cached
    /// step never was, and has no latency of its own).
    steps: Vec<(StepMetrics, bool)>,
}

/// A dispatched step's figures so far.
#[derive(Debug)]
struct Dispatched {
    /// When it first became ready.
    first_ready_us: u64,
    /// Its wait before its first dispatch.
    first_wait_us: u64,
    /// Its time on workers, over the dispatches that ended.
    run_us: u64,
    /// The dispatch it is in now, if it is on a worker.
    open: Option<Open>,
}

/// A dispatch that has not ended yet: a [`Slice`] without its end.
#[derive(Debug)]
struct Open {
    attempt: u32,
    worker: usize,
    ready_us: u64,
    start_us: u64,
}

impl Dispatched {
    /// Ends the open dispatch at `now`, if there is one, as a slice of `step`.
    fn close(&mut self, step: &str, now: u64, slices: &mut Vec<Vec<Slice>>) {
        if let Some(open) = self.open.take() {
            self.run_us += now - open.start_us;
            if slices.len() <= open.worker {
                slices.resize_with(open.worker + 1, Vec::new);
            }
            slices[open.worker].push(Slice {
                step: step.to_owned(),
                attempt: open.attempt,
                worker: open.worker,
                ready_us: open.ready_us,
                start_us: open.start_us,
                end_us: now,
            });
        }
    }
}

impl Recorder {
    /// A recorder for a run of `steps` steps, with room for each step's figures and one
    /// dispatch each, so that a large run does not grow (and copy) them as it goes. Each
    /// worker gets room for every step, since how the steps split between the workers is not
    /// known: room that is never written costs address space, not memory, while a worker's
    /// list grown past an even share was copied into fresh pages (80 page faults for 10,000
    /// no-op steps on 2 workers).
    pub fn for_steps(steps: usize, workers: usize) -> Self {
        Self {
            dispatched: HashMap::default(),
            slices: (0..workers).map(|_| Vec::with_capacity(steps)).collect(),
            steps: Vec::with_capacity(steps),
        }
    }

    /// Takes one event that happened `at` after the start.
    pub fn observe(&mut self, at: Duration, event: &Event) {
        let now = micros(at);
        match event {
            Event::StepDispatched {
                step,
                worker,
                attempt,
                queue_wait_us,
            } => {
                let ready_us = now.saturating_sub(*queue_wait_us);
                let open = Some(Open {
                    attempt: *attempt,
                    worker: *worker,
                    ready_us,
                    start_us: now,
                });
                match self.dispatched.get_mut(step.as_str()) {
                    Some(d) => {
                        d.close(step, now, &mut self.slices);
                        d.open = open;
                    }
                    None => {
                        self.dispatched.insert(
                            step.clone(),
                            Dispatched {
                                first_ready_us: ready_us,
                                first_wait_us: *queue_wait_us,
                                run_us: 0,
                                open,
                            },
                        );
                    }
                }
            }
            Event::StepRetrying { step, .. } => {
                if let Some(d) = self.dispatched.get_mut(step.as_str()) {
                    d.close(step, now, &mut self.slices);
                }
            }
            Event::StepFinished {
                step,
                status,
                cached,
                attempts,
                fuel_used,
                peak_memory,
                ..
            } => {
                let dispatched = self.dispatched.remove_entry(step.as_str());
                let was_dispatched = dispatched.is_some();
                let (name, (queue_wait_us, run_us, latency_us)) = match dispatched {
                    Some((name, mut d)) => {
                        d.close(step, now, &mut self.slices);
                        let latency_us = now.saturating_sub(d.first_ready_us);
                        (name, (d.first_wait_us, d.run_us, latency_us))
                    }
                    None => (step.clone(), (0, 0, 0)),
                };
                self.steps.push((
                    StepMetrics {
                        step: name,
                        status: *status,
                        cached: *cached,
                        attempts: *attempts,
                        queue_wait_us,
                        run_us,
                        latency_us,
                        fuel_used: *fuel_used,
                        peak_memory: *peak_memory,
                    },
                    was_dispatched,
                ));
            }
            _ => {}
        }
    }

    /// The figures of a run that took `wall` on `workers` workers.
    pub fn finish(mut self, wall: Duration, workers: usize) -> RunMetrics {
        let wall_us = micros(wall);
        // Dispatches still open were abandoned by an interrupt: they end with the run.
        for (step, d) in &mut self.dispatched {
            d.close(step, wall_us, &mut self.slices);
        }
        let slices = merge_by_start(self.slices);
        let dispatched: Vec<&StepMetrics> = self
            .steps
            .iter()
            .filter_map(|(s, dispatched)| dispatched.then_some(s))
            .collect();
        let latency_us = Percentiles::of(dispatched.iter().map(|s| s.latency_us).collect());
        let queue_wait_us =
            Percentiles::of(slices.iter().map(|s| s.start_us - s.ready_us).collect());
        let pickup_us = Percentiles::of(pickups(&slices, workers));
        let ended = dispatched
            .iter()
            .filter(|s| s.status != StepStatus::Skipped)
            .count();
        let succeeded = dispatched
            .iter()
            .filter(|s| s.status == StepStatus::Succeeded)
            .count();
        let busy: u64 = slices.iter().map(|s| s.end_us - s.start_us).sum();
        let capacity = wall_us.saturating_mul(workers as u64);
        RunMetrics {
            wall_us,
            workers,
            latency_us,
            queue_wait_us,
            pickup_us,
            success_rate: if ended == 0 {
                1.0
            } else {
                succeeded as f64 / ended as f64
            },
            utilization: if capacity == 0 {
                0.0
            } else {
                busy as f64 / capacity as f64
            },
            queue_depth: queue_depth(&slices, wall_us),
            steps: self.steps.into_iter().map(|(s, _)| s).collect(),
            slices,
        }
    }
}

/// Every worker's dispatches in one list, sorted by start, then worker. Each worker's are
/// already in that order, but for a dispatch abandoned by a lost worker, which ends when
/// another worker takes the step again; a list out of order is sorted first.
fn merge_by_start(mut by_worker: Vec<Vec<Slice>>) -> Vec<Slice> {
    let key = |s: &Slice| (s.start_us, s.worker);
    for slices in &mut by_worker {
        if !slices.is_sorted_by_key(key) {
            slices.sort_by_key(key);
        }
    }
    let mut merged = Vec::with_capacity(by_worker.iter().map(Vec::len).sum());
    let mut lists: Vec<std::iter::Peekable<std::vec::IntoIter<Slice>>> = by_worker
        .into_iter()
        .map(|slices| slices.into_iter().peekable())
        .collect();
    // Few workers: the next slice is found by looking at each list's first.
    while let Some(next) = lists
        .iter_mut()
        .enumerate()
        .filter_map(|(i, list)| Some((key(list.peek()?), i)))
        .min()
        .map(|(_, i)| i)
    {
        merged.extend(lists[next].next());
    }
    merged
}

/// Each dispatch's pickup latency: its start less the later of its ready time and the end of
/// its worker's previous dispatch. `slices` are sorted by start.
fn pickups(slices: &[Slice], workers: usize) -> Vec<u64> {
    let mut free_since = vec![0u64; workers.max(1)];
    slices
        .iter()
        .map(|s| {
            let free = free_since.get(s.worker).copied().unwrap_or(0);
            if let Some(f) = free_since.get_mut(s.worker) {
                *f = s.end_us;
            }
            s.start_us.saturating_sub(s.ready_us.max(free))
        })
        .collect()
}

/// The ready-queue depth over time: each dispatch was waiting from its ready time to its start.
fn queue_depth(slices: &[Slice], wall_us: u64) -> Vec<(u64, usize)> {
    let bucket = (wall_us / DEPTH_SAMPLES as u64).max(1);
    let mut samples: Vec<(u64, usize)> = Vec::new();
    let mut depth: i64 = 0;
    for (t, change) in changes(slices) {
        depth += change;
        let start = t / bucket * bucket;
        let d = depth.max(0) as usize;
        match samples.last_mut() {
            Some((at, deepest)) if *at == start => *deepest = (*deepest).max(d),
            _ => samples.push((start, d)),
        }
    }
    samples
}

/// Each arrival in the ready queues (+1, at a ready time) and departure (−1, at a start), in
/// time order; at one instant, departures first, since a step taken as it became ready never
/// waited. Both lists are sorted and then merged: the slices are sorted by start, and the
/// ready times nearly so, which a stable sort takes in about linear time.
fn changes(slices: &[Slice]) -> impl Iterator<Item = (u64, i64)> {
    let mut arrivals: Vec<u64> = slices.iter().map(|s| s.ready_us).collect();
    arrivals.sort();
    let mut departures: Vec<u64> = slices.iter().map(|s| s.start_us).collect();
    departures.sort();
    let mut arrivals = arrivals.into_iter().peekable();
    let mut departures = departures.into_iter().peekable();
    std::iter::from_fn(move || match (arrivals.peek(), departures.peek()) {
        (Some(&a), Some(&d)) if d <= a => departures.next().map(|t| (t, -1)),
        (Some(_), _) => arrivals.next().map(|t| (t, 1)),
        (None, _) => departures.next().map(|t| (t, -1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn dispatched(step: &str, worker: usize, attempt: u32, wait: u64) -> Event {
        Event::StepDispatched {
            step: step.into(),
            worker,
            attempt,
            queue_wait_us: wait,
        }
    }

    fn finished(step: &str, status: StepStatus, attempts: u32) -> Event {
        Event::StepFinished {
            step: step.into(),
            status,
            outcome: "success",
            exit_code: Some(0),
            message: None,
            attempts,
            fuel_used: 10,
            peak_memory: 65536,
            duration_ms: 0,
            outputs: Vec::new(),
            allowed_failure: false,
            stderr_tail: String::new(),
            cached: false,
            resumed: false,
            key: None,
            files: Vec::new(),
            logs: false,
        }
    }

    #[test]
    fn steps_slices_and_run_figures_come_from_the_events() {
        let mut r = Recorder::default();
        r.observe(us(100), &dispatched("a", 0, 1, 100));
        r.observe(us(150), &dispatched("b", 1, 1, 150));
        r.observe(us(300), &finished("a", StepStatus::Succeeded, 1));
        r.observe(
            us(350),
            &Event::StepRetrying {
                step: "b".into(),
                attempt: 1,
                message: "timed out".into(),
                delay_ms: 0,
            },
        );
        r.observe(us(400), &dispatched("b", 0, 2, 50));
        r.observe(us(500), &finished("b", StepStatus::Failed, 2));
        let m = r.finish(us(1000), 2);
        assert_eq!(m.slices.len(), 3);
        let b = &m.steps[1];
        assert_eq!(
            (b.queue_wait_us, b.run_us, b.latency_us, b.attempts),
            (150, 200 + 100, 500, 2)
        );
        assert_eq!(m.success_rate, 0.5);
        // Busy 200 + 200 + 100 of 2 × 1000.
        assert_eq!(m.utilization, 0.25);
        assert_eq!(m.queue_wait_us.max, 150);
        // `a` and `b` were ready at 0 with their workers free: picked up after 100 and 150 µs.
        // `b`'s second attempt was ready at 350 on worker 0, free since 300: picked up at 400.
        assert_eq!(pickups(&m.slices, 2), [100, 150, 50]);
        assert_eq!(m.latency_us.p50, 300);
        // Two steps waited from 0; one again from 350 to 400.
        assert_eq!(m.queue_depth.first(), Some(&(0, 2)));
        assert!(m.queue_depth.contains(&(350, 1)));
        // `summary.json` has the steps and the run's figures; the dispatches are in
        // `events.jsonl` and the trace.
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["steps"][1]["run_us"], 300);
        assert!(json.get("slices").is_none());
    }

    /// The old definition: the values sorted, then indexed by nearest rank.
    fn sorted_percentiles(mut values: Vec<u64>) -> Percentiles {
        values.sort_unstable();
        let rank = |p: f64| {
            let k = ((p / 100.0) * values.len() as f64).ceil() as usize;
            values[k.clamp(1, values.len()) - 1]
        };
        Percentiles {
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: values[values.len() - 1],
        }
    }

    #[test]
    fn selected_percentiles_are_the_sorted_ones() {
        // Pseudo-random values with many repeats, of every length up to 300.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for n in 1..=300 {
            let values: Vec<u64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % 50
                })
                .collect();
            assert_eq!(
                Percentiles::of(values.clone()),
                sorted_percentiles(values),
                "{n} values"
            );
        }
    }

    #[test]
    fn the_changes_come_merged_as_if_sorted() {
        // Against sorting them all: departures before arrivals at one instant.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut slices: Vec<Slice> = (0..500)
            .map(|k| {
                let ready_us = next(1000);
                let start_us = ready_us + next(3) * next(40);
                Slice {
                    step: format!("s{k}"),
                    attempt: 1,
                    worker: k % 2,
                    ready_us,
                    start_us,
                    end_us: start_us + 5,
                }
            })
            .collect();
        slices.sort_by_key(|s| (s.start_us, s.worker));
        let mut sorted: Vec<(u64, i64)> = slices
            .iter()
            .flat_map(|s| [(s.ready_us, 1), (s.start_us, -1)])
            .collect();
        sorted.sort_unstable();
        assert!(
            sorted
                .windows(2)
                .any(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
        );
        assert_eq!(changes(&slices).collect::<Vec<_>>(), sorted);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let p = Percentiles::of((1..=100).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50, 90, 99, 100));
        assert_eq!(Percentiles::of(vec![7]).p99, 7);
        assert_eq!(Percentiles::of(Vec::new()), Percentiles::default());
    }

    /// The workers' dispatches merged are the same list as all of them sorted, with equal
    /// starts on different workers, empty workers, and a worker's list out of order (a
    /// dispatch abandoned by a lost worker ends after that worker's later ones).
    #[test]
    fn merging_the_workers_dispatches_sorts_them_by_start_then_worker() {
        let mut state = 7u64;
        let mut next = |below: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % below
        };
        let slice = |worker: usize, start_us: u64| Slice {
            step: format!("w{worker}@{start_us}"),
            attempt: 1,
            worker,
            ready_us: start_us / 2,
            start_us,
            end_us: start_us + 1,
        };
        let mut by_worker: Vec<Vec<Slice>> = vec![Vec::new(); 4];
        for worker in [0, 1, 3] {
            let mut t = 0;
            for _ in 0..300 {
                t += next(3);
                by_worker[worker].push(slice(worker, t));
            }
        }
        // Worker 1 lost a step it took at 5; it ended when another worker took it again.
        by_worker[1].push(slice(1, 5));
        let mut expected: Vec<Slice> = by_worker.iter().flatten().cloned().collect();
        expected.sort_by_key(|s| (s.start_us, s.worker));
        let merged = merge_by_start(by_worker);
        let names = |v: &[Slice]| v.iter().map(|s| s.step.clone()).collect::<Vec<_>>();
        assert_eq!(names(&merged), names(&expected));
        assert!(merge_by_start(Vec::new()).is_empty());
    }
}
