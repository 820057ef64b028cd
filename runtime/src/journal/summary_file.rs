//! Writing `summary.json`: serde's bytes, with the steps' figures written field by field.
//!
//! Most of a large run's summary is `metrics.steps`, one object per step: 1.6 MB for 10,000
//! steps. It is written after the last step has ended, while the run waits for it, and
//! through serde's derive most of that time went into escaping the same nine field names
//! again for every step. Here everything but the steps is serialized by serde, with no steps,
//! and each step's object is written between the brackets in exactly the bytes serde gives
//! it (a test compares both). The steps are streamed to the file, as
//! [`super::write_json_atomic`] streams, since a buffer of megabytes costs a page fault per page.
//! 10,000 no-op steps at `--jobs 2`: 88.7 → 87.5 and 91.7 → 90.3 ms (medians of 60 interleaved
//! runs).

use std::io::{self, Write};
use std::path::Path;

use super::line::{cached_field, number, status_field, string};
use super::runs::Summary;
use crate::pool::metrics::{RunMetrics, StepMetrics};

/// Writes `summary` to `path` as [`super::write_json_atomic`] would.
pub(crate) fn write(path: &Path, summary: &Summary<'_>) -> io::Result<()> {
    let (json, at) = without_steps(summary)?;
    let (head, tail) = json.split_at(at);
    super::write_atomic_with(path, |file| {
        let mut out = super::chunks::Chunked::new(file);
        out.write_all(head)?;
        let mut object = Vec::with_capacity(256);
        for (i, step) in summary.metrics.steps.iter().enumerate() {
            object.clear();
            if i > 0 {
                object.push(b',');
            }
            write_step(&mut object, step);
            out.write_all(&object)?;
        }
        out.write_all(tail)?;
        out.finish()?;
        Ok(())
    })
}

/// The summary's JSON with no steps, and where they go: the index of the `]` of `"steps":[]`.
fn without_steps(summary: &Summary<'_>) -> io::Result<(Vec<u8>, usize)> {
    let m = summary.metrics;
    // Every field but the steps (and the slices, which the summary leaves out): a field added
    // to `RunMetrics` must be added here too, or this does not compile.
    let no_steps = RunMetrics {
        wall_us: m.wall_us,
        workers: m.workers,
        steps: Vec::new(),
        slices: Vec::new(),
        latency_us: m.latency_us,
        queue_wait_us: m.queue_wait_us,
        pickup_us: m.pickup_us,
        success_rate: m.success_rate,
        utilization: m.utilization,
        queue_depth: m.queue_depth.clone(),
    };
    let json = serde_json::to_vec(&Summary {
        run_id: summary.run_id.clone(),
        metrics: &no_steps,
        ..*summary
    })?;
    // Inside a JSON string every `"` is escaped, so these bytes can only be the key.
    const EMPTY: &[u8] = b"\"steps\":[]";
    let at = json
        .windows(EMPTY.len())
        .rposition(|w| w == EMPTY)
        .ok_or_else(|| io::Error::other("the summary has no empty `steps`"))?;
    Ok((json, at + EMPTY.len() - 1))
}

/// One step's figures as serde writes them.
fn write_step(out: &mut Vec<u8>, m: &StepMetrics) {
    out.extend_from_slice(b"{\"step\":");
    string(out, &m.step);
    status_field(out, m.status);
    cached_field(out, m.cached);
    for (name, value) in [
        (&b",\"attempts\":"[..], u64::from(m.attempts)),
        (b",\"queue_wait_us\":", m.queue_wait_us),
        (b",\"run_us\":", m.run_us),
        (b",\"latency_us\":", m.latency_us),
        (b",\"fuel_used\":", m.fuel_used),
        (b",\"peak_memory\":", m.peak_memory),
    ] {
        out.extend_from_slice(name);
        number(out, value);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{RunStatus, StepStatus};
    use crate::journal::runs::{Counts, SUMMARY_VERSION};
    use crate::pool::metrics::Percentiles;

    fn step(name: &str, status: StepStatus, cached: bool, n: u64) -> StepMetrics {
        StepMetrics {
            step: name.into(),
            status,
            cached,
            attempts: n as u32,
            queue_wait_us: n,
            run_us: n + 1,
            latency_us: n + 2,
            fuel_used: n + 3,
            peak_memory: n + 4,
        }
    }

    /// A run's summary, written here and by serde, for `steps` and `names` (workflow and
    /// started-at strings that need escaping or not).
    fn both(steps: Vec<StepMetrics>, names: &str) -> (String, String) {
        let metrics = RunMetrics {
            wall_us: 77_279,
            workers: 2,
            steps,
            slices: Vec::new(),
            latency_us: Percentiles {
                p50: 1,
                p90: 2,
                p99: 3,
                max: 4,
            },
            queue_wait_us: Percentiles::default(),
            pickup_us: Percentiles {
                p50: 0,
                p90: 0,
                p99: u64::MAX,
                max: u64::MAX,
            },
            success_rate: 0.987_654_321,
            utilization: 1.0,
            queue_depth: vec![(0, 10), (5_000, 3), (9_999, 0)],
        };
        let summary = Summary {
            version: SUMMARY_VERSION,
            run_id: "20261124-121045-987".into(),
            workflow: names,
            status: RunStatus::Failed,
            started_at: names,
            duration_ms: 77,
            jobs: 2,
            seed: Some(7),
            keep_going: true,
            resumed_from: Some(names),
            counts: Counts::default(),
            metrics: &metrics,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        write(&path, &summary).unwrap();
        (
            std::fs::read_to_string(&path).unwrap(),
            serde_json::to_string(&summary).unwrap(),
        )
    }

    /// Every shape of a step's figures, names that need escaping included, and a workflow
    /// whose name holds the bytes the steps are spliced at, is written byte for byte as
    /// serde writes it.
    #[test]
    fn the_summary_is_written_as_serde_writes_it() {
        let odd = "a \"quoted\" \\ name\twith\u{1}control, ünïcödé and \u{7f}";
        let tricky = "\"steps\":[] and ],\"steps\":[";
        let mut steps = Vec::new();
        for (i, status) in [
            StepStatus::Succeeded,
            StepStatus::Failed,
            StepStatus::Skipped,
        ]
        .into_iter()
        .enumerate()
        {
            for cached in [false, true] {
                steps.push(step(&format!("r{i:03}"), status, cached, i as u64));
            }
        }
        steps.push(step(odd, StepStatus::Failed, false, u64::from(u32::MAX)));
        steps.push(step(tricky, StepStatus::Succeeded, true, 0));
        for names in ["dag", odd, tricky] {
            for steps in [Vec::new(), steps[..1].to_vec(), steps.clone()] {
                let (written, serde) = both(steps, names);
                assert_eq!(written, serde);
            }
        }
    }
}
