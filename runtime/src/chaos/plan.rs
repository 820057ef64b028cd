//! The fault plan: which step gets which fault, derived from a seed and the run's steps alone,
//! so that a seed replays exactly and prints in full before the run.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::pool::rng::{Rng, splitmix64};
use crate::sandbox::clock::ClockJump;
use crate::sandbox::faults::{WasiFault, WasiOp};

/// A kind of fault the pool can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Memory pressure: the step's memory limit is lowered.
    Memory,
    /// Fuel starvation: the step's fuel is lowered.
    Fuel,
    /// Clock skew: the step's wall clock starts elsewhere than the usual epoch.
    Clock,
    /// A clock jump: at one of the guest's clock reads, the wall clock jumps (backwards too)
    /// and the monotonic clock leaps forward.
    ClockJump,
    /// A worker thread panics as it takes the step; the pool must run the step again.
    Worker,
    /// A worker thread is lost mid-step: it ends without a word, and the pool must notice,
    /// replace it and run the step again.
    WorkerLost,
    /// A bit of the step's stored outputs archive flips in the cache.
    CacheBitflip,
    /// The step's stored outputs archive is cut short in the cache.
    CacheTruncate,
    /// The disk is full when the step's result is stored.
    DiskFull,
    /// A file operation at the WASI boundary returns EIO, ENOSPC or EACCES.
    Io,
    /// A file write writes only part of what it was given (half; one byte on a component's
    /// file stream).
    ShortWrite,
    /// Every file operation answers late.
    SlowIo,
    /// The guest traps at its k-th file operation.
    Trap,
    /// The whole `hermetic` process is killed (SIGKILL) once the step has finished, and
    /// `hermetic run --resume` finishes the run.
    ProcessKill,
}

impl FaultKind {
    /// Every kind, in order.
    pub const ALL: [FaultKind; 14] = [
        FaultKind::Memory,
        FaultKind::Fuel,
        FaultKind::Clock,
        FaultKind::ClockJump,
        FaultKind::Worker,
        FaultKind::WorkerLost,
        FaultKind::CacheBitflip,
        FaultKind::CacheTruncate,
        FaultKind::DiskFull,
        FaultKind::Io,
        FaultKind::ShortWrite,
        FaultKind::SlowIo,
        FaultKind::Trap,
        FaultKind::ProcessKill,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Memory => "memory",
            FaultKind::Fuel => "fuel",
            FaultKind::Clock => "clock",
            FaultKind::ClockJump => "clock_jump",
            FaultKind::Worker => "worker",
            FaultKind::WorkerLost => "worker_lost",
            FaultKind::CacheBitflip => "cache_bitflip",
            FaultKind::CacheTruncate => "cache_truncate",
            FaultKind::DiskFull => "disk_full",
            FaultKind::Io => "io",
            FaultKind::ShortWrite => "short_write",
            FaultKind::SlowIo => "slow_io",
            FaultKind::Trap => "trap",
            FaultKind::ProcessKill => "process_kill",
        }
    }

    /// Whether the fault changes what the step's attempt sees (its limits, clocks or WASI
    /// calls), rather than the worker, the cache or the process around it.
    pub fn is_guest(self) -> bool {
        !matches!(
            self,
            FaultKind::Worker | FaultKind::WorkerLost | FaultKind::ProcessKill
        ) && !self.is_cache()
    }

    /// Whether the fault hits the result cache rather than the step's attempt.
    pub fn is_cache(self) -> bool {
        matches!(
            self,
            FaultKind::CacheBitflip | FaultKind::CacheTruncate | FaultKind::DiskFull
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault `{s}`; the faults are {}", names.join(", "))
            })
    }
}

/// One injected fault, on the first attempt of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub step: String,
    pub kind: FaultKind,
    /// What exactly: the lowered limit, the skew, …
    pub detail: String,
    /// The new memory limit, for `memory`.
    #[serde(skip)]
    pub memory: Option<u64>,
    /// The new fuel limit, for `fuel`.
    #[serde(skip)]
    pub fuel: Option<u64>,
    /// Seconds added to the wall clock's epoch, for `clock`.
    #[serde(skip)]
    pub clock_skew: Option<i64>,
    /// The jump, for `clock_jump`.
    #[serde(skip)]
    pub clock_jump: Option<ClockJump>,
    /// Which byte (modulo the archive's length) to damage, for the cache faults.
    #[serde(skip)]
    pub offset: u64,
    /// What goes wrong at the WASI boundary, for `io`, `short_write`, `slow_io` and `trap`.
    #[serde(skip)]
    pub wasi: Option<WasiFault>,
}

/// What a step's attempt is run with, when the plan has a fault for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestFault {
    pub memory: Option<u64>,
    pub fuel: Option<u64>,
    pub clock_skew: Option<i64>,
    pub clock_jump: Option<ClockJump>,
    pub wasi: Option<WasiFault>,
}

/// Every fault of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultPlan {
    pub seed: u64,
    /// The chance that a step gets a fault.
    pub rate: f64,
    pub kinds: Vec<FaultKind>,
    /// By step index.
    pub faults: BTreeMap<usize, Fault>,
}

impl FaultPlan {
    /// The faults for `steps` (names in plan order) under `seed`: each step independently gets
    /// a fault with probability `rate`, of a kind drawn evenly from `kinds`.
    pub fn derive(seed: u64, rate: f64, kinds: &[FaultKind], steps: &[&str]) -> Self {
        Self::derive_rates(seed, &even_rates(rate, kinds), steps)
    }

    /// The faults for `steps` (names in plan order; an empty name gets none) under `seed`: each
    /// step independently gets a fault of kind `k` with probability `rates[k]` (the rates sum
    /// to at most 1). A step's draw depends on the seed and its own name only, so adding a
    /// step does not change the others' faults.
    pub fn derive_rates(seed: u64, rates: &[(FaultKind, f64)], steps: &[&str]) -> Self {
        let mut faults = BTreeMap::new();
        for (i, name) in steps.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let mut rng = Rng::new(
                seed ^ splitmix64(u64::from_le_bytes(
                    blake3::hash(name.as_bytes()).as_bytes()[..8]
                        .try_into()
                        .unwrap_or_default(),
                )),
            );
            let draw = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let mut below = 0.0;
            let kind = rates.iter().find_map(|&(kind, rate)| {
                below += rate;
                (draw < below).then_some(kind)
            });
            if let Some(kind) = kind {
                faults.insert(i, fault(name, kind, &mut rng));
            }
        }
        Self {
            seed,
            rate: rates.iter().map(|(_, r)| r).sum(),
            kinds: rates.iter().map(|(k, _)| *k).collect(),
            faults,
        }
    }

    /// The plan of a suite's seed: faults drawn with `rates` for the steps named `names` (in
    /// plan order), only for `targets` if given, and only the `(step, kind)` pairs of `only`
    /// if given.
    pub fn for_suite(
        seed: u64,
        rates: &[(FaultKind, f64)],
        names: &[&str],
        targets: Option<&[String]>,
        only: Option<&[(String, FaultKind)]>,
    ) -> Self {
        let targeted: Vec<&str> = names
            .iter()
            .map(|n| match targets {
                Some(t) if !t.iter().any(|s| s == n) => "",
                _ => *n,
            })
            .collect();
        let mut plan = Self::derive_rates(seed, rates, &targeted);
        if let Some(only) = only {
            plan.retain(|f| only.iter().any(|(s, k)| *s == f.step && *k == f.kind));
        }
        plan
    }

    /// Keeps only the faults `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Fault) -> bool) {
        self.faults.retain(|_, f| keep(f));
    }

    /// The guest-level fault for attempt `attempt` of step `i`, if any.
    pub fn guest_fault(&self, i: usize, attempt: u32) -> Option<GuestFault> {
        let f = self.faults.get(&i).filter(|_| attempt == 1)?;
        f.kind.is_guest().then_some(GuestFault {
            memory: f.memory,
            fuel: f.fuel,
            clock_skew: f.clock_skew,
            clock_jump: f.clock_jump,
            wasi: f.wasi,
        })
    }

    /// The steps with a fault of `kind`.
    pub fn steps_with(&self, kind: FaultKind) -> impl Iterator<Item = (usize, &Fault)> {
        self.faults
            .iter()
            .filter(move |(_, f)| f.kind == kind)
            .map(|(i, f)| (*i, f))
    }

    /// Whether the worker taking attempt `attempt` of step `i` panics.
    pub fn worker_panics(&self, i: usize, attempt: u32) -> bool {
        self.first_attempt_has(i, attempt, FaultKind::Worker)
    }

    /// Whether the worker running attempt `attempt` of step `i` is lost mid-step.
    pub fn worker_lost(&self, i: usize, attempt: u32) -> bool {
        self.first_attempt_has(i, attempt, FaultKind::WorkerLost)
    }

    fn first_attempt_has(&self, i: usize, attempt: u32, kind: FaultKind) -> bool {
        attempt == 1 && self.faults.get(&i).is_some_and(|f| f.kind == kind)
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.name()).collect();
        write!(
            f,
            "seed {}: {} fault{} (rate {}, kinds {})",
            self.seed,
            self.faults.len(),
            if self.faults.len() == 1 { "" } else { "s" },
            self.rate,
            kinds.join(",")
        )?;
        for fault in self.faults.values() {
            write!(f, "\n  {} {}: {}", fault.step, fault.kind, fault.detail)?;
        }
        Ok(())
    }
}

/// `rate` shared evenly by `kinds`.
pub fn even_rates(rate: f64, kinds: &[FaultKind]) -> Vec<(FaultKind, f64)> {
    kinds
        .iter()
        .map(|&k| (k, rate / kinds.len() as f64))
        .collect()
}

fn fault(step: &str, kind: FaultKind, rng: &mut Rng) -> Fault {
    let mut fault = Fault {
        step: step.to_string(),
        kind,
        detail: String::new(),
        memory: None,
        fuel: None,
        clock_skew: None,
        clock_jump: None,
        offset: rng.next_u64(),
        wasi: None,
    };
    match kind {
        FaultKind::Memory => {
            // From one 64 KiB page to 4 MiB: most real tasks fail below a few MiB.
            let pages = 1 + rng.below(64) as u64;
            fault.memory = Some(pages * 65536);
            fault.detail = format!("memory limit lowered to {} KiB", pages * 64);
        }
        FaultKind::Fuel => {
            // From 1,000 to 1,000,000 instructions: a no-op Rust `main` needs about 3,500.
            let fuel = 1000 * (1 + rng.below(1000) as u64);
            fault.fuel = Some(fuel);
            fault.detail = format!("fuel lowered to {fuel}");
        }
        FaultKind::Clock => {
            // Up to 50 years either way, never zero.
            let days = 1 + rng.below(50 * 365) as i64;
            let skew = if rng.below(2) == 0 { days } else { -days } * 86_400;
            fault.clock_skew = Some(skew);
            fault.detail = format!("wall clock skewed by {} days", skew / 86_400);
        }
        FaultKind::ClockJump => {
            let at_read = 1 + rng.below(8) as u32;
            // From an hour to ten years, either way; the monotonic clock from a second to a day.
            let hours = 1 + rng.below(10 * 365 * 24) as i64;
            let wall_secs = if rng.below(2) == 0 { hours } else { -hours } * 3600;
            let monotonic_secs = 1 + rng.below(86_400) as u64;
            fault.clock_jump = Some(ClockJump {
                at_read,
                wall_secs,
                monotonic_secs,
            });
            fault.detail = format!(
                "at clock read number {at_read}, the wall clock jumps {} hours and the \
                 monotonic clock {monotonic_secs} s",
                wall_secs / 3600
            );
        }
        FaultKind::Worker => {
            fault.detail = "the worker panics as it takes the step".into();
        }
        FaultKind::WorkerLost => {
            fault.detail =
                "the worker thread is lost mid-step, without reporting the step's end".into();
        }
        FaultKind::ProcessKill => {
            fault.detail =
                "hermetic is killed (SIGKILL) once the step has finished, then resumed".into();
        }
        FaultKind::CacheBitflip => {
            fault.detail = "a bit flips in its stored outputs archive".into();
        }
        FaultKind::CacheTruncate => {
            fault.detail = "its stored outputs archive is cut short".into();
        }
        FaultKind::DiskFull => {
            fault.detail = "the disk is full when its result is stored".into();
        }
        FaultKind::Io => {
            let (op, verb) = [
                (WasiOp::Open, "open"),
                (WasiOp::Read, "read"),
                (WasiOp::Write, "write"),
            ][rng.below(3)];
            let (errno, name) = [(29, "EIO"), (51, "ENOSPC"), (2, "EACCES")][rng.below(3)];
            let nth = 1 + rng.below(3) as u32;
            fault.wasi = Some(WasiFault::Errno { op, nth, errno });
            fault.detail = format!("file {verb} number {nth} returns {name}");
        }
        FaultKind::ShortWrite => {
            let nth = 1 + rng.below(3) as u32;
            fault.wasi = Some(WasiFault::ShortWrite { nth });
            fault.detail = format!(
                "file write number {nth} is cut short (to half of its first buffer; on a \
                 component's file stream, to one byte)"
            );
        }
        FaultKind::SlowIo => {
            let millis = 1 + rng.below(20) as u64;
            fault.wasi = Some(WasiFault::Slow { millis });
            fault.detail = format!("every file operation waits {millis} ms");
        }
        FaultKind::Trap => {
            let nth = 1 + rng.below(4) as u32;
            fault.wasi = Some(WasiFault::Trap { nth });
            fault.detail = format!("traps at file operation number {nth}");
        }
    }
    fault
}

/// `N` or `A..B` (inclusive).
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("--seeds takes `N` or `A..B`, not `{text}`"))
    };
    match text.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b.trim_start_matches('='))?);
            if a > b {
                return Err(format!("--seeds `{text}` is empty: {a} is after {b}"));
            }
            if b - a >= 100_000 {
                return Err(format!("--seeds `{text}` has more than 100,000 seeds"));
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![number(text)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

    #[test]
    fn a_seed_replays_and_another_differs() {
        let plan = |seed| FaultPlan::derive(seed, 0.5, &FaultKind::ALL, &STEPS);
        assert_eq!(plan(7), plan(7));
        assert_eq!(plan(7).to_string(), plan(7).to_string());
        let distinct: std::collections::BTreeSet<String> =
            (0..20).map(|s| plan(s).to_string()).collect();
        assert!(distinct.len() > 15);
    }

    #[test]
    fn the_rate_and_kinds_are_respected() {
        assert!(
            FaultPlan::derive(1, 0.0, &FaultKind::ALL, &STEPS)
                .faults
                .is_empty()
        );
        let all = FaultPlan::derive(1, 1.0, &[FaultKind::Fuel], &STEPS);
        assert_eq!(all.faults.len(), STEPS.len());
        assert!(
            all.faults
                .values()
                .all(|f| f.kind == FaultKind::Fuel && f.fuel.is_some())
        );
        // A step's fault depends on its name, not on the other steps.
        let fewer = FaultPlan::derive(1, 1.0, &[FaultKind::Fuel], &STEPS[..3]);
        assert_eq!(fewer.faults[&2], all.faults[&2]);
    }

    #[test]
    fn only_first_attempts_are_faulted() {
        let plan = FaultPlan::derive(3, 1.0, &[FaultKind::Worker, FaultKind::Memory], &STEPS);
        for i in 0..STEPS.len() {
            let worker = plan.worker_panics(i, 1);
            assert_eq!(worker, plan.guest_fault(i, 1).is_none());
            assert!(!plan.worker_panics(i, 2));
            assert!(plan.guest_fault(i, 2).is_none());
        }
        assert_eq!("fuel".parse::<FaultKind>(), Ok(FaultKind::Fuel));
        assert_eq!(
            "disk".parse::<FaultKind>(),
            Err(
                "unknown fault `disk`; the faults are memory, fuel, clock, clock_jump, worker, \
                 worker_lost, cache_bitflip, cache_truncate, disk_full, io, short_write, \
                 slow_io, trap, process_kill"
                    .into()
            )
        );
    }

    #[test]
    fn seeds_are_a_number_or_an_inclusive_range() {
        assert_eq!(parse_seeds("7"), Ok(vec![7]));
        assert_eq!(parse_seeds("1..3"), Ok(vec![1, 2, 3]));
        assert_eq!(parse_seeds("1..=3"), Ok(vec![1, 2, 3]));
        assert_eq!(
            parse_seeds("5..1"),
            Err("--seeds `5..1` is empty: 5 is after 1".into())
        );
        assert_eq!(
            parse_seeds("x"),
            Err("--seeds takes `N` or `A..B`, not `x`".into())
        );
    }
}
