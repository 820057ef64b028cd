//! The example pipeline (`examples/pipeline`), as the README runs it: every step runs and
//! produces the expected bytes, and the second run is served entirely from the cache.

use std::path::{Path, PathBuf};

use hermetic_tests::scrub_elapsed;

fn pipeline_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pipeline")
}

#[test]
fn the_example_pipeline_runs_then_is_fully_cached() {
    let dir = pipeline_dir().canonicalize().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        let out = hermetic_tests::command(&dir, cache.path())
            .args(["run", "--jobs", "2"])
            .output()
            .unwrap();
        let stderr = scrub_elapsed(&String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let first = run();
    for step in [
        "lint",
        "config",
        "test",
        "build",
        "package",
        "checksums",
        "report",
    ] {
        assert!(
            first.contains(&format!("  Finished {step} in [ELAPSED]\n")),
            "{step} ran:\n{first}"
        );
    }
    let out = dir.join(".hermetic/out");
    let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
    assert_eq!(read("lint/todo-count.txt"), "2\n");
    assert_eq!(
        read("build/site/index.html"),
        "<!doctype html>\n<title>Example</title>\n<h1>Example 1.4.2</h1>\n<p>Built from 2 source files by hermetic.</p>\n"
    );
    let package = std::fs::read(out.join("package/site.tar.zst")).unwrap();
    assert_eq!(
        read("checksums/SHA.b3"),
        format!("{}  site.tar.zst\n", blake3::hash(&package).to_hex())
    );
    assert!(read("report/report/junit.xml").contains(
        "<testsuites name=\"pipeline\" tests=\"5\" failures=\"0\" errors=\"0\" skipped=\"1\">"
    ));

    let second = run();
    assert!(
        second.ends_with("      Done 7 succeeded (7 cached), 0 failed, 0 skipped in [ELAPSED]\n"),
        "{second}"
    );
    assert!(!second.contains("Running"), "{second}");
}

/// The chaos suite of issue 6's acceptance, over the example pipeline: 200 seeds and every
/// fault kind hermetic injects, with zero invariant violations.
#[test]
fn the_example_pipeline_survives_200_chaos_seeds() {
    let dir = pipeline_dir().canonicalize().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let report = cache.path().join("chaos.json");
    let out = hermetic_tests::command(&dir, cache.path())
        .args(["chaos", "--seeds", "1..200", "--jobs", "2", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(", 0 invariant violations;"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["seeds"].as_array().unwrap().len(), 200);
    assert_eq!(report["violations"], 0);
    assert_eq!(report["kinds"].as_array().unwrap().len(), 14);
}
