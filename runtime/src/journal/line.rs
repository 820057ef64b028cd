//! One line of `events.jsonl`: `{"t_us":…,"event":…,…,"files":[…]}`, the event's own fields
//! after the time, and the output `files` of a succeeded step when it has some.
//!
//! Nearly every line of a run is about one of its steps: three per step (`step_dispatched`,
//! `step_started`, `step_finished`), 30,000 lines for 10,000 steps, all written on the thread
//! that reports while the workers run. Those three events are written here field by field, in
//! exactly the bytes serde's derive gives them (the tests compare both on every shape), rather
//! than through the derive's internally tagged enum: 10,000 no-op steps at `--jobs 2` took
//! 88.3 ms instead of 91.6 (median of 15 interleaved runs). Every other event is serialized by
//! serde and spliced in, which is what `#[serde(flatten)]` would give, without the cost of
//! flattening.

use std::io;

use hermetic_cache::{Digest, FileEntry};

use crate::events::{Event, StepStatus};

/// Appends the line of `event`, which happened `t_us` µs after the run started, to `out`.
/// `scratch` is a buffer for events written through serde. On an error, `out` may hold part
/// of the line: the caller truncates it.
pub(crate) fn write(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    t_us: u64,
    event: &Event,
    files: &[FileEntry],
) -> io::Result<()> {
    out.extend_from_slice(b"{\"t_us\":");
    number(out, t_us);
    out.push(b',');
    if !step_fields(out, event) {
        scratch.clear();
        serde_json::to_writer(&mut *scratch, event)?;
        // An internally tagged enum is a JSON object: `{"event":…}`.
        let fields = scratch
            .strip_prefix(b"{")
            .and_then(|s| s.strip_suffix(b"}"))
            .ok_or_else(|| io::Error::other("an event is not a JSON object"))?;
        out.extend_from_slice(fields);
    }
    if !files.is_empty() {
        out.extend_from_slice(b",\"files\":");
        serde_json::to_writer(&mut *out, files)?;
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// Writes the fields of a step's dispatch, start or end, as serde would, without braces;
/// `false` (and nothing written) for any other event.
fn step_fields(out: &mut Vec<u8>, event: &Event) -> bool {
    match event {
        Event::StepDispatched {
            step,
            worker,
            attempt,
            queue_wait_us,
        } => {
            out.extend_from_slice(b"\"event\":\"step_dispatched\",\"step\":");
            string(out, step);
            out.extend_from_slice(b",\"worker\":");
            number(out, *worker as u64);
            out.extend_from_slice(b",\"attempt\":");
            number(out, u64::from(*attempt));
            out.extend_from_slice(b",\"queue_wait_us\":");
            number(out, *queue_wait_us);
        }
        Event::StepStarted { step, attempt } => {
            out.extend_from_slice(b"\"event\":\"step_started\",\"step\":");
            string(out, step);
            out.extend_from_slice(b",\"attempt\":");
            number(out, u64::from(*attempt));
        }
        Event::StepFinished {
            step,
            status,
            outcome,
            exit_code,
            message,
            attempts,
            fuel_used,
            peak_memory,
            duration_ms,
            outputs,
            allowed_failure,
            stderr_tail: _,
            cached,
            resumed,
            key,
            files: _,
            logs: _,
        } => {
            out.extend_from_slice(b"\"event\":\"step_finished\",\"step\":");
            string(out, step);
            status_field(out, *status);
            out.extend_from_slice(b",\"outcome\":");
            string(out, outcome);
            if let Some(code) = exit_code {
                out.extend_from_slice(b",\"exit_code\":");
                out.extend_from_slice(itoa::Buffer::new().format(*code).as_bytes());
            }
            if let Some(message) = message {
                out.extend_from_slice(b",\"message\":");
                string(out, message);
            }
            out.extend_from_slice(b",\"attempts\":");
            number(out, u64::from(*attempts));
            out.extend_from_slice(b",\"fuel_used\":");
            number(out, *fuel_used);
            out.extend_from_slice(b",\"peak_memory\":");
            number(out, *peak_memory);
            out.extend_from_slice(b",\"duration_ms\":");
            number(out, *duration_ms);
            out.extend_from_slice(b",\"outputs\":[");
            for (k, output) in outputs.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                string(out, output);
            }
            out.push(b']');
            if *allowed_failure {
                out.extend_from_slice(b",\"allowed_failure\":true");
            }
            cached_field(out, *cached);
            if *resumed {
                out.extend_from_slice(b",\"resumed\":true");
            }
            if let Some(key) = key {
                out.extend_from_slice(b",\"key\":");
                digest(out, key);
            }
        }
        _ => return false,
    }
    true
}

/// `,"status":…` of a step, as serde writes it after the field before.
pub(super) fn status_field(out: &mut Vec<u8>, status: StepStatus) {
    out.extend_from_slice(match status {
        StepStatus::Succeeded => b",\"status\":\"succeeded\"",
        StepStatus::Failed => b",\"status\":\"failed\"",
        StepStatus::Skipped => b",\"status\":\"skipped\"",
    });
}

/// `,"cached":…` of a step, as serde writes it after the field before.
pub(super) fn cached_field(out: &mut Vec<u8>, cached: bool) {
    out.extend_from_slice(if cached {
        b",\"cached\":true"
    } else {
        b",\"cached\":false"
    });
}

pub(super) fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn digest(out: &mut Vec<u8>, d: &Digest) {
    out.push(b'"');
    out.extend_from_slice(&d.hex_digits());
    out.push(b'"');
}

/// `s` as a JSON string. serde_json escapes exactly the control characters, `"` and `\`; a
/// string without any (every step name) is copied as it is.
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing to a `Vec` cannot fail, and a `str` always serializes.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line serde alone gives: the event serialized whole and spliced in.
    fn through_serde(t_us: u64, event: &Event, files: &[FileEntry]) -> Vec<u8> {
        let fields = serde_json::to_vec(event).unwrap();
        let mut line = format!("{{\"t_us\":{t_us},").into_bytes();
        line.extend_from_slice(&fields[1..fields.len() - 1]);
        if !files.is_empty() {
            line.extend_from_slice(b",\"files\":");
            line.extend_from_slice(&serde_json::to_vec(files).unwrap());
        }
        line.extend_from_slice(b"}\n");
        line
    }

    fn written(t_us: u64, event: &Event, files: &[FileEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, &mut Vec::new(), t_us, event, files).unwrap();
        out
    }

    fn finished(status: StepStatus) -> Event {
        Event::StepFinished {
            step: "build".into(),
            status,
            outcome: "success",
            exit_code: Some(0),
            message: None,
            attempts: 1,
            fuel_used: 235,
            peak_memory: 1_114_112,
            duration_ms: 3,
            outputs: Vec::new(),
            allowed_failure: false,
            stderr_tail: "not in the journal".into(),
            cached: false,
            resumed: false,
            key: None,
            files: Vec::new(),
            logs: true,
        }
    }

    /// Every shape of the three step events, strings that need escaping included, is
    /// written byte for byte as serde writes it.
    #[test]
    fn step_events_are_written_as_serde_writes_them() {
        let odd = "a \"quoted\" \\ name\twith\u{1}control, ünïcödé and \u{7f}";
        let file = FileEntry {
            path: "out/a.txt".into(),
            digest: Digest::of(b"a"),
            size: 1,
        };
        let mut events = vec![
            Event::StepDispatched {
                step: "r000_01".into(),
                worker: 1,
                attempt: 2,
                queue_wait_us: 18_446_744_073_709_551_615,
            },
            Event::StepDispatched {
                step: odd.into(),
                worker: 0,
                attempt: 1,
                queue_wait_us: 0,
            },
            Event::StepStarted {
                step: "c00001".into(),
                attempt: 1,
            },
            Event::StepStarted {
                step: odd.into(),
                attempt: u32::MAX,
            },
        ];
        for status in [
            StepStatus::Succeeded,
            StepStatus::Failed,
            StepStatus::Skipped,
        ] {
            events.push(finished(status));
        }
        let mut every_option = finished(StepStatus::Failed);
        if let Event::StepFinished {
            step,
            outcome,
            exit_code,
            message,
            outputs,
            allowed_failure,
            cached,
            resumed,
            key,
            ..
        } = &mut every_option
        {
            *step = odd.into();
            *outcome = "exit";
            *exit_code = Some(-7);
            *message = Some(format!("exited with {odd}\n"));
            *outputs = vec!["a.txt".into(), odd.into(), "dir/b".into()];
            *allowed_failure = true;
            *cached = true;
            *resumed = true;
            *key = Some(Digest::of(b"key"));
        }
        events.push(every_option);
        for event in &events {
            for files in [&[][..], std::slice::from_ref(&file)] {
                let line = written(1_234, event, files);
                assert_eq!(
                    String::from_utf8(line).unwrap(),
                    String::from_utf8(through_serde(1_234, event, files)).unwrap()
                );
            }
        }
    }

    /// Other events go through serde, spliced after the time.
    #[test]
    fn other_events_are_spliced_from_serde() {
        let event = Event::Warning {
            step: Some("a".into()),
            message: "cache \"full\"".into(),
        };
        assert_eq!(
            String::from_utf8(written(5, &event, &[])).unwrap(),
            "{\"t_us\":5,\"event\":\"warning\",\"step\":\"a\",\"message\":\"cache \\\"full\\\"\"}\n"
        );
    }
}
