//! Ctrl-C: running steps stop, the run exits with 130, and nothing is left half-written.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hermetic_tests::{Test, guests};

#[test]
fn sigint_stops_running_steps_exits_130_and_leaves_nothing_half_written() {
    let t = Test::new()
        .guest("guests/hello.wasm", guests::HELLO_P1)
        .guest("guests/spin.wasm", guests::INFINITE_LOOP_P1)
        .guest("guests/copy.wasm", guests::COPY_IN_OUT_P1)
        .file("src/in.txt", "input\n")
        .file(
            "hermetic.yaml",
            "name: interrupt
steps:
  quick:
    task: guests/copy.wasm
    inputs: [src/in.txt]
    outputs: [src/in.txt]
  spin:
    task: guests/spin.wasm
    timeout: 5m
    fuel: 1000000000000000
    outputs: [never.txt]
  after:
    task: guests/hello.wasm
    depends_on: [spin]
",
        );
    let mut child = hermetic_tests::command(t.path(), &t.cache_dir())
        .args(["run", "--jobs", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hermetic");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let _ = lines_tx.send(line.unwrap());
        }
    });

    // Wait until `quick` has finished (its event is out) and `spin` is running (its
    // per-attempt directory exists: `spin` reaches no files, and leases one only because it
    // declares an output to collect).
    let tmp = t.path().join(".hermetic/tmp");
    let started = Instant::now();
    let mut events = Vec::new();
    loop {
        while let Ok(line) = lines.try_recv() {
            events.push(line);
        }
        let quick_done = events
            .iter()
            .any(|l| l.contains(r#""event":"step_finished","step":"quick""#));
        let spinning = std::fs::read_dir(&tmp)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("spin-"))
            })
            .unwrap_or(false);
        if spinning && quick_done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "spin never started; events so far: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "hermetic did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().unwrap();
    events.extend(lines.try_iter());
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(130), "stderr:\n{stderr}");
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(
        (
            &last["event"],
            &last["status"],
            &last["succeeded"],
            &last["failed"],
            &last["skipped"]
        ),
        (
            &"run_finished".into(),
            &"interrupted".into(),
            &1.into(),
            &0.into(),
            &0.into()
        ),
        "events: {events:#?}"
    );

    // The attempt directory of `spin` is gone; only the shared empty mount remains.
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["empty"]);
    // Published outputs are complete, and nothing else (no staging directories) is there.
    let out: Vec<String> = std::fs::read_dir(t.path().join(".hermetic/out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(out, ["quick"]);
    assert_eq!(
        std::fs::read(t.path().join(".hermetic/out/quick/src/in.txt")).unwrap(),
        b"input\n"
    );
}
