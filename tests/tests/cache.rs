//! The result cache end to end: hits restore outputs without running anything, a change re-runs
//! exactly what depends on it, corruption is detected and rebuilt, and `hermetic why` names what
//! changed.

use std::collections::BTreeMap;
use std::path::Path;

use hermetic_tests::{Output, Test, guests};

/// `a` copies `a/*.txt`, `b` copies `b/*.txt`, `list` lists what `a` produced.
fn project() -> Test {
    Test::new()
        .file(
            "hermetic.yaml",
            "\
name: cached
steps:
  a:
    task: guests/copy.wasm
    inputs: [\"a/*.txt\"]
    outputs: [a]
  b:
    task: guests/copy.wasm
    inputs: [\"b/*.txt\"]
    outputs: [b]
    env: { MODE: fast }
  list:
    task: guests/ls.wasm
    args: [/deps]
    depends_on: [a]
",
        )
        .guest("guests/copy.wasm", guests::COPY_IN_OUT_P2)
        .guest("guests/ls.wasm", guests::LS_P1)
        .file("a/one.txt", "one\n")
        .file("a/two.txt", "two\n")
        .file("b/three.txt", "three\n")
}

/// Each finished step's name and whether it was cached, from `--json` events.
fn cached_by_step(out: &Output) -> BTreeMap<String, bool> {
    out.json_lines()
        .into_iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| {
            assert_eq!(e["status"], "succeeded", "{e}");
            (
                e["step"].as_str().unwrap().to_owned(),
                e["cached"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn expect(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
    pairs.iter().map(|(s, c)| ((*s).to_owned(), *c)).collect()
}

/// Every file under `dir`, relative path to bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    hermetic_tests::snapshot(dir)
        .into_iter()
        .map(|(p, b)| (p.to_string_lossy().into_owned(), b))
        .collect()
}

#[test]
fn a_second_run_executes_nothing_and_restores_the_same_bytes() {
    let first = project().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&first),
        expect(&[("a", false), ("b", false), ("list", false)])
    );
    let outputs = files(&first.join(".hermetic/out"));
    let list_log = first.read(".hermetic/logs/list/stdout");
    assert!(list_log.contains("one.txt"), "{list_log}");

    // Remove the published outputs and logs: the hit must restore them from the cache.
    std::fs::remove_dir_all(first.join(".hermetic/out")).unwrap();
    std::fs::remove_dir_all(first.join(".hermetic/logs")).unwrap();
    let second = first.again().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&second),
        expect(&[("a", true), ("b", true), ("list", true)])
    );
    assert_eq!(files(&second.join(".hermetic/out")), outputs);
    assert_eq!(second.read(".hermetic/logs/list/stdout"), list_log);
    let finished = second
        .json_lines()
        .into_iter()
        .find(|e| e["event"] == "run_finished")
        .unwrap();
    assert_eq!(finished["cached"], 3);

    // Humans see it too.
    second
        .again()
        .args(["run", "--jobs", "1"])
        .expect_status(0)
        .expect_stderr(
            "    Cached a\n    Cached b\n    Cached list\n      Done 3 succeeded (3 cached), 0 failed, 0 skipped in [ELAPSED]\n",
        )
        .run();
}

#[test]
fn changing_one_input_reruns_only_what_depends_on_it() {
    let first = project().args(["run", "--json"]).expect_status(0).run();
    std::fs::write(first.join("a/two.txt"), "TWO\n").unwrap();
    let second = first.again().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&second),
        expect(&[("a", false), ("b", true), ("list", false)])
    );
    assert_eq!(second.read(".hermetic/out/a/a/two.txt"), "TWO\n");

    // Changing it back is a hit again: the old result is still in the cache.
    std::fs::write(first.join("a/two.txt"), "two\n").unwrap();
    let third = first.again().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&third),
        expect(&[("a", true), ("b", true), ("list", true)])
    );
    assert_eq!(third.read(".hermetic/out/a/a/two.txt"), "two\n");
}

#[test]
fn no_cache_runs_everything() {
    let first = project().args(["run", "--json"]).expect_status(0).run();
    let second = first
        .again()
        .args(["run", "--json", "--no-cache"])
        .expect_status(0)
        .run();
    assert_eq!(
        cached_by_step(&second),
        expect(&[("a", false), ("b", false), ("list", false)])
    );
}

/// Every regular file under `dir`.
fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn flipped_bits_and_truncation_are_detected_and_rebuilt() {
    for damage in ["flip", "truncate"] {
        let first = project().args(["run", "--json"]).expect_status(0).run();
        let outputs = files(&first.join(".hermetic/out"));
        let store = first.cache_dir().join("store");
        let mut damaged = 0;
        for sub in ["cas", "ac"] {
            for f in all_files(&store.join(sub)) {
                let mut bytes = std::fs::read(&f).unwrap();
                if bytes.is_empty() {
                    continue;
                }
                if damage == "flip" {
                    let mid = bytes.len() / 2;
                    bytes[mid] ^= 0x10;
                } else {
                    bytes.truncate(bytes.len() / 2);
                }
                std::fs::write(&f, bytes).unwrap();
                damaged += 1;
            }
        }
        assert!(damaged >= 4, "{damage}: damaged only {damaged} files");
        first
            .again()
            .args(["cache", "verify"])
            .expect_status(1)
            .run();

        std::fs::remove_dir_all(first.join(".hermetic/out")).unwrap();
        let second = first.again().args(["run", "--json"]).expect_status(0).run();
        assert_eq!(
            cached_by_step(&second),
            expect(&[("a", false), ("b", false), ("list", false)]),
            "{damage}: nothing damaged may be served"
        );
        assert_eq!(files(&second.join(".hermetic/out")), outputs, "{damage}");
        // Rebuilt: the next run hits, and the store is clean again.
        let third = first.again().args(["run", "--json"]).expect_status(0).run();
        assert_eq!(
            cached_by_step(&third),
            expect(&[("a", true), ("b", true), ("list", true)]),
            "{damage}"
        );
        first
            .again()
            .args(["cache", "verify"])
            .expect_status(0)
            .run();
    }
}

#[test]
fn cache_stats_counts_hits_and_misses() {
    let first = project().args(["run"]).expect_status(0).run();
    first.again().args(["run"]).expect_status(0).run();
    let stats = first
        .again()
        .args(["cache", "stats"])
        .expect_status(0)
        .run();
    assert!(
        stats
            .stdout
            .contains("hit rate:    50.0% (3 hits, 3 misses over the last 2 runs)"),
        "{}",
        stats.stdout
    );
    assert!(
        stats.stdout.contains("entries:     3\n"),
        "{}",
        stats.stdout
    );
}

#[test]
fn why_names_what_changed() {
    let first = project().args(["run"]).expect_status(0).run();
    first
        .again()
        .args(["why", "list"])
        .expect_status(0)
        .expect_stdout_contains("because no earlier run of it was recorded")
        .run();
    first.again().args(["run"]).expect_status(0).run();
    first
        .again()
        .args(["why", "a"])
        .expect_status(0)
        .expect_stdout_contains("`a` was served from the cache in its last run")
        .run();

    // An input file.
    std::fs::write(first.join("a/two.txt"), "changed\n").unwrap();
    first.again().args(["run"]).expect_status(0).run();
    let why_a = first.again().args(["why", "a"]).expect_status(0).run();
    assert!(
        why_a.stdout.contains("ran because its key changed"),
        "{}",
        why_a.stdout
    );
    assert!(
        why_a.stdout.contains("  - input `a/two.txt`: modified\n"),
        "{}",
        why_a.stdout
    );
    // Its dependent, through the dependency's output.
    let why_list = first.again().args(["why", "list"]).expect_status(0).run();
    assert!(
        why_list.stdout.contains("  - output of dependency `a`: "),
        "{}",
        why_list.stdout
    );
    assert_eq!(why_list.stdout.lines().count(), 2, "{}", why_list.stdout);

    // An env var, an argument, a new input file, and the module.
    let yaml = std::fs::read_to_string(first.join("hermetic.yaml")).unwrap();
    let yaml = yaml
        .replace("MODE: fast", "MODE: slow")
        .replace("args: [/deps]", "args: [/deps, /out]");
    std::fs::write(first.join("hermetic.yaml"), yaml).unwrap();
    std::fs::write(first.join("b/four.txt"), "four\n").unwrap();
    first.again().args(["run"]).expect_status(0).run();
    let why_b = first.again().args(["why", "b"]).expect_status(0).run();
    assert!(
        why_b
            .stdout
            .contains("  - env var `MODE`: `fast` → `slow`\n"),
        "{}",
        why_b.stdout
    );
    assert!(
        why_b.stdout.contains("  - input `b/four.txt`: added\n"),
        "{}",
        why_b.stdout
    );
    let why_list = first.again().args(["why", "list"]).expect_status(0).run();
    assert!(
        why_list.stdout.contains("  - argument 2: `/out` added\n"),
        "{}",
        why_list.stdout
    );

    // The same program, built for the other WASI version: a different module.
    std::fs::copy(guests::COPY_IN_OUT_P1, first.join("guests/copy.wasm")).unwrap();
    first.again().args(["run"]).expect_status(0).run();
    let why_a = first.again().args(["why", "a"]).expect_status(0).run();
    assert!(why_a.stdout.contains("  - module: "), "{}", why_a.stdout);

    first
        .again()
        .args(["why", "lst"])
        .expect_status(2)
        .expect_stderr("error: `hermetic.yaml` has no step `lst`; did you mean `list`?\n")
        .run();
}

/// `.hermetic/keys.json` is rewritten only when a run changes what it records.
#[test]
fn key_records_are_rewritten_only_when_they_change() {
    use std::os::unix::fs::MetadataExt;
    let first = project().args(["run"]).expect_status(0).run();
    let inode = || {
        std::fs::metadata(first.join(".hermetic/keys.json"))
            .unwrap()
            .ino()
    };
    let cold = inode();
    // Fully cached: the last run's hits change, the steps' records do not.
    first.again().args(["run"]).expect_status(0).run();
    let hits = inode();
    assert_ne!(hits, cold);
    first.again().args(["run"]).expect_status(0).run();
    assert_eq!(inode(), hits, "the same hits again");
    // Run again under the same keys: recorded once; the same runs again change nothing.
    first
        .again()
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    let ran = inode();
    assert_ne!(ran, hits);
    first
        .again()
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    assert_eq!(inode(), ran, "the same runs again");
    // The records are settled for that run: `keys.settled` says so, for this `keys.json`, and
    // the same run once more leaves both as they are.
    let settled = first.read(".hermetic/keys.settled");
    let keys_len = first.read(".hermetic/keys.json").len();
    assert!(
        settled.ends_with('\n') && settled.split(' ').nth(1) == Some(&*keys_len.to_string()),
        "{settled}"
    );
    first
        .again()
        .args(["run", "--no-cache"])
        .expect_status(0)
        .run();
    assert_eq!(inode(), ran);
    assert_eq!(first.read(".hermetic/keys.settled"), settled);
    first
        .again()
        .args(["why", "a"])
        .expect_status(0)
        .expect_stdout_contains("`a` ran with the same key as the run before")
        .run();
    // A different run (hits now) changes the records, and the claim with them.
    first.again().args(["run"]).expect_status(0).run();
    assert_ne!(inode(), ran);
    assert_ne!(first.read(".hermetic/keys.settled"), settled);
    // `keys.json` changed behind hermetic's back is no longer vouched for: it is read, found
    // empty, and written again in full.
    std::fs::write(first.join(".hermetic/keys.json"), "{}").unwrap();
    first.again().args(["run"]).expect_status(0).run();
    first
        .again()
        .args(["why", "a"])
        .expect_status(0)
        .expect_stdout_contains("`a` was served from the cache in its last run")
        .run();
}

#[test]
fn verify_reruns_and_finds_the_outputs_reproducible() {
    let first = project().args(["run"]).expect_status(0).run();
    let verify = first.again().args(["verify"]).expect_status(0).run();
    assert!(
        verify
            .stderr
            .contains("  Verified 3 reproducible, 0 not reproducible, 0 not cached\n"),
        "{}",
        verify.stderr
    );
    // It never touches the real outputs or the cache: the next run is fully cached.
    let again = first.again().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&again),
        expect(&[("a", true), ("b", true), ("list", true)])
    );
}

#[test]
fn a_hit_leaves_matching_outputs_untouched() {
    use std::os::unix::fs::MetadataExt;
    let first = project().args(["run"]).expect_status(0).run();
    let path = first.join(".hermetic/out/a/a/one.txt");
    let before = std::fs::metadata(&path).unwrap();
    let second = first.again().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&second),
        expect(&[("a", true), ("b", true), ("list", true)])
    );
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (after.ino(), after.mtime(), after.mtime_nsec()),
        (before.ino(), before.mtime(), before.mtime_nsec()),
        "the output was rewritten"
    );
    // A damaged output is restored, though.
    std::fs::write(&path, "tampered\n").unwrap();
    first.again().args(["run"]).expect_status(0).run();
    assert_eq!(first.read(".hermetic/out/a/a/one.txt"), "one\n");
}

#[test]
fn cache_gc_removes_results_by_age_and_the_next_run_rebuilds() {
    let first = project().args(["run"]).expect_status(0).run();
    // Nothing is older than a day: nothing goes.
    first
        .again()
        .args(["cache", "gc", "--max-age", "1d"])
        .expect_status(0)
        .run();
    let kept = first.again().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&kept),
        expect(&[("a", true), ("b", true), ("list", true)])
    );
    // Everything is older than zero seconds.
    first
        .again()
        .args(["cache", "gc", "--max-age", "0s"])
        .expect_status(0)
        .run();
    let stats = first
        .again()
        .args(["cache", "stats"])
        .expect_status(0)
        .run();
    assert!(
        stats.stdout.contains("entries:     0\n"),
        "{}",
        stats.stdout
    );
    let rebuilt = first.again().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&rebuilt),
        expect(&[("a", false), ("b", false), ("list", false)])
    );
    first
        .again()
        .args(["cache", "gc", "--max-age", "soon"])
        .expect_status(2)
        .expect_stderr_contains("`soon` is not an age; write a whole number and a unit, e.g. `30d`")
        .run();
}

/// A store that cannot be written to fails no step: the run succeeds with its outputs, warns
/// once per batch naming the path, and the next run runs again (nothing was cached).
#[test]
fn a_store_that_cannot_be_written_warns_and_fails_nothing() {
    let first = project().args(["run", "--json"]).expect_status(0).run();
    // Make every blob shard a regular file: every blob write now fails.
    let store = first.cache_dir().join("store");
    let cas = store.join("cas");
    std::fs::remove_dir_all(&cas).unwrap();
    std::fs::create_dir(&cas).unwrap();
    for shard in 0..=255u8 {
        std::fs::write(cas.join(format!("{shard:02x}")), "in the way").unwrap();
    }
    std::fs::remove_dir_all(store.join("ac")).unwrap();
    std::fs::create_dir(store.join("ac")).unwrap();

    let second = first.again().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&second),
        expect(&[("a", false), ("b", false), ("list", false)])
    );
    let warnings: Vec<String> = second
        .json_lines()
        .into_iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(!warnings.is_empty());
    for w in &warnings {
        assert!(w.starts_with("cache write failed; the result"), "{w}");
        assert!(
            w.contains(": cannot read `$PROJECT/cache/store/cas/"),
            "{w}"
        );
        assert!(w.ends_with("Not a directory (os error 20)"), "{w}");
    }
    assert_eq!(second.read(".hermetic/out/a/a/one.txt"), "one\n");
    let third = first.again().args(["run", "--json"]).expect_status(0).run();
    assert_eq!(
        cached_by_step(&third),
        expect(&[("a", false), ("b", false), ("list", false)])
    );
}

/// The published outputs of a run and those a cache hit restores are the same tree, modes
/// included: the directory a run publishes is not a private temporary directory.
#[test]
fn a_restored_tree_has_the_modes_of_a_run() {
    use std::os::unix::fs::PermissionsExt;
    fn modes(root: &Path) -> BTreeMap<String, u32> {
        let mut found = BTreeMap::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                found.insert(rel, meta.permissions().mode() & 0o7777);
                if meta.is_dir() {
                    pending.push(path);
                }
            }
        }
        found
    }
    let first = project().args(["run"]).expect_status(0).run();
    let out = first.join(".hermetic/out");
    let ran = modes(&out);
    assert!(ran.len() > 3, "{ran:?}");
    std::fs::remove_dir_all(&out).unwrap();
    let hit = first.again().args(["run", "--json"]).expect_status(0).run();
    let cached = hit
        .json_lines()
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["cached"] == true)
        .count();
    assert_eq!(cached, 3);
    assert_eq!(modes(&out), ran);
}

/// A workflow that names its own cache directory (`defaults.cache_dir`, relative to the
/// workflow) keeps its compiled modules and its results there, not in the user's cache, and a
/// second run is served from it.
#[test]
fn a_workflow_with_its_own_cache_dir_compiles_and_caches_there() {
    let test = Test::new()
        .file(
            "hermetic.yaml",
            "\
name: own
defaults:
  cache_dir: own-cache
steps:
  a:
    task: guests/copy.wasm
    inputs: [\"a/*.txt\"]
    outputs: [a]
",
        )
        .guest("guests/copy.wasm", guests::COPY_IN_OUT_P2)
        .file("a/one.txt", "one\n");
    let xdg = test.path().with_file_name("xdg");
    // No `HERMETIC_CACHE_DIR`, and a user's cache of its own.
    let run = |test: Test| {
        test.env_remove("HERMETIC_CACHE_DIR")
            .env("XDG_CACHE_HOME", &xdg)
            .args(["run", "--json"])
            .expect_status(0)
            .run()
    };
    let first = run(test);
    assert_eq!(cached_by_step(&first), expect(&[("a", false)]));
    let compiled: Vec<String> = std::fs::read_dir(first.join("own-cache/compiled"))
        .expect("own-cache/compiled")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".cwasm"))
        .collect();
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    assert!(
        first.exists("own-cache/store"),
        "{}",
        first.tree("own-cache")
    );
    for unused in ["hermetic/compiled", "hermetic/store"] {
        assert!(!xdg.join(unused).exists(), "{unused} in the user's cache");
    }

    let second = run(first.again());
    assert_eq!(cached_by_step(&second), expect(&[("a", true)]));
    assert_eq!(second.read(".hermetic/out/a/a/one.txt"), "one\n");
}
