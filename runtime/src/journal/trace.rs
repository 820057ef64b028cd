//! `--trace FILE`: a run's dispatches as Chrome trace-event JSON, which Perfetto
//! (<https://ui.perfetto.dev>) and `chrome://tracing` open.
//!
//! One track per worker holds a slice per dispatch (a cache lookup, or an attempt), named
//! after the step, with its attempt and how long it waited in the queues. A counter track
//! shows the ready-queue depth. Times are microseconds since the run started.

use std::io;
use std::path::Path;

use serde_json::{Value, json};

use crate::pool::metrics::RunMetrics;

/// The trace of a run of `workflow` that measured `metrics`.
pub fn chrome_trace(workflow: &str, metrics: &RunMetrics) -> Value {
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": 1, "tid": 0,
        "args": { "name": format!("hermetic run: {workflow}") },
    })];
    for worker in 0..metrics.workers {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": 1, "tid": worker,
            "args": { "name": format!("worker {worker}") },
        }));
    }
    for s in &metrics.slices {
        events.push(json!({
            "name": s.step, "cat": "step", "ph": "X", "pid": 1, "tid": s.worker,
            "ts": s.start_us, "dur": s.end_us - s.start_us,
            "args": { "attempt": s.attempt, "queue_wait_us": s.start_us - s.ready_us },
        }));
    }
    for (t, depth) in &metrics.queue_depth {
        events.push(json!({
            "name": "ready steps", "ph": "C", "pid": 1, "ts": t, "args": { "depth": depth },
        }));
    }
    json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

/// Writes the trace to `path`.
pub fn write(path: &Path, workflow: &str, metrics: &RunMetrics) -> io::Result<()> {
    let bytes = serde_json::to_vec(&chrome_trace(workflow, metrics)).map_err(io::Error::from)?;
    std::fs::write(path, bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write `{}`: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::metrics::Slice;

    #[test]
    fn one_track_per_worker_and_a_slice_per_dispatch() {
        let metrics = RunMetrics {
            workers: 2,
            slices: vec![Slice {
                step: "build".into(),
                attempt: 1,
                worker: 1,
                ready_us: 5,
                start_us: 10,
                end_us: 30,
            }],
            queue_depth: vec![(5, 1)],
            ..RunMetrics::default()
        };
        let trace = chrome_trace("ci", &metrics);
        let events = trace["traceEvents"].as_array().unwrap();
        let names: Vec<&Value> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| &e["args"]["name"])
            .collect();
        assert_eq!(names, ["worker 0", "worker 1"]);
        let slice = events.iter().find(|e| e["ph"] == "X").unwrap();
        assert_eq!(
            slice,
            &json!({
                "name": "build", "cat": "step", "ph": "X", "pid": 1, "tid": 1, "ts": 10,
                "dur": 20, "args": { "attempt": 1, "queue_wait_us": 5 },
            })
        );
        assert!(
            events
                .iter()
                .any(|e| e["ph"] == "C" && e["args"]["depth"] == 1)
        );
    }
}
