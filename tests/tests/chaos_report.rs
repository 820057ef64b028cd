//! `hermetic chaos` writes an HTML report beside the JSON one: it parses as HTML5 without an
//! error, needs nothing from outside, and says what the JSON says (the verdict, the summary's
//! counts, and every failing seed's replay command, shrunk or not).

use std::collections::BTreeMap;

use hermetic_tests::{Output, Test, guests};
use html5ever::parse_document;
use html5ever::tendril::TendrilSink;
use markup5ever_rcdom::{Handle, NodeData, RcDom};
use serde_json::Value;

/// A small pipeline: a copy, a step reading its output, and an independent greeting.
fn project() -> Test {
    hermetic_tests::copy_list_greet("chaos")
}

/// The planted bug of `chaos.rs`: a task whose output depends on the clock, under clock faults.
fn planted() -> Test {
    Test::new()
        .file(
            "hermetic.yaml",
            "name: planted\nsteps:\n  stamp:\n    task: stamp.wasm\n    outputs: [stamp.txt]\n",
        )
        .guest("stamp.wasm", guests::STAMP_P1)
}

#[test]
fn a_passing_suite_has_an_html_report_with_its_summary_and_replays() {
    let out = project()
        .args([
            "chaos",
            "--seeds",
            "1..8",
            "--faults",
            "memory,fuel,worker",
            "--rate",
            "0.6",
            "--jobs",
            "2",
        ])
        .expect_status(0)
        .expect_stderr_contains(
            "report in `./.hermetic/chaos/report.json` and `./.hermetic/chaos/report.html`\n",
        )
        .run();
    let (json, page) = reports(&out);
    let seeds = json["seeds"].as_array().unwrap();
    assert_eq!(json["violations"], 0);

    let verdict = page.by_id("verdict");
    assert_eq!(text(&verdict), "PASS");
    assert!(has_class(&verdict, "pass"));
    assert!(page.by_id_opt("violations").is_none());

    // The outcomes, counted as in the JSON.
    let outcomes = rows(&page.by_id("outcomes"));
    for outcome in ["succeeded", "failed", "hung"] {
        let count = seeds.iter().filter(|s| s["outcome"] == outcome).count();
        assert_eq!(outcomes[outcome][0], count.to_string(), "{outcome}");
        assert_eq!(outcomes[outcome][1], "0", "{outcome}");
    }
    assert_eq!(outcomes["all"][0], seeds.len().to_string());
    assert!(
        seeds.iter().any(|s| s["outcome"] == "failed"),
        "some faults (fuel starvation, memory pressure) fail steps"
    );
    // Each kind, injected as often as the JSON says.
    let kinds = rows(&page.by_id("kinds"));
    for kind in ["memory", "fuel", "worker"] {
        let injected = seeds
            .iter()
            .flat_map(|s| s["faults"].as_array().unwrap())
            .filter(|f| f["kind"] == kind)
            .count();
        assert_eq!(kinds[kind][1], injected.to_string(), "{kind}");
    }
    // The totals: retries, and the determinism self-check.
    let totals = rows(&page.by_id("totals"));
    let retries: u64 = seeds.iter().map(|s| s["retries"].as_u64().unwrap()).sum();
    assert!(totals["Retries"][0].starts_with(&format!("{retries} ")));
    assert!(totals["Determinism"][0].starts_with("same trace"));

    // One row per seed, and each failed seed's replay command, exactly.
    let table = page.by_id("seed-table");
    let bodies = descendants(&table, |n| tag(n) == Some("tbody"));
    assert_eq!(bodies.len(), seeds.len());
    let replays = replay_commands(&table, false);
    for seed in seeds {
        let n = seed["seed"].as_u64().unwrap();
        if seed["outcome"] == "succeeded" {
            assert!(!replays.contains_key(&n), "seed {n} succeeded");
        } else {
            assert_eq!(replays[&n], seed["replay"].as_str().unwrap(), "seed {n}");
        }
    }
}

#[test]
fn a_failing_suite_has_an_html_report_with_its_violations_and_shrunk_replays() {
    let out = planted()
        .args([
            "chaos", "--seeds", "1..3", "--faults", "clock", "--rate", "1",
        ])
        .expect_status(1)
        .expect_stderr_contains("3 invariant violations")
        .run();
    let (json, page) = reports(&out);
    let seeds = json["seeds"].as_array().unwrap();
    assert_eq!(json["violations"], 3);

    let verdict = page.by_id("verdict");
    assert_eq!(text(&verdict), "FAIL");
    assert!(has_class(&verdict, "fail"));

    let outcomes = rows(&page.by_id("outcomes"));
    // Seeds, and seeds with violations.
    assert_eq!(outcomes["succeeded"][..2], ["3", "3"]);
    assert_eq!(outcomes["all"][..2], ["3", "3"]);
    let kinds = rows(&page.by_id("kinds"));
    // Rate, injected, seeds with it, failed by it, with violations, in shrunk lists.
    assert_eq!(kinds["clock"], ["100%", "3", "3", "0", "3", "3"]);

    // Every violating seed, with its violation, its replay command and its shrunk one.
    let violations = page.by_id("violations");
    let cards = descendants(&violations, |n| {
        has_class(n, "violation") && tag(n) == Some("details")
    });
    assert_eq!(cards.len(), seeds.len());
    assert!(
        text(&violations)
            .contains("step stamp succeeded with outputs that differ from the fault-free run")
    );
    let replays = replay_commands(&violations, false);
    let shrunk = replay_commands(&violations, true);
    for seed in seeds {
        let n = seed["seed"].as_u64().unwrap();
        assert_eq!(replays[&n], seed["replay"].as_str().unwrap());
        assert_eq!(shrunk[&n], seed["shrunk"]["replay"].as_str().unwrap());
        assert!(
            shrunk[&n].ends_with(" --only stamp:clock"),
            "{}",
            shrunk[&n]
        );
    }
    // The seed table has them too.
    let table = replay_commands(&page.by_id("seed-table"), false);
    assert_eq!(table, replays);
}

#[test]
fn a_report_path_ending_in_html_is_refused() {
    project()
        .args(["chaos", "--report", "out/report.html"])
        .expect_status(2)
        .expect_stderr(
            "error: --report names the JSON report, and the HTML one is written beside it with \
             the extension `.html`: `out/report.html` would be both\n",
        )
        .run();
}

/// The JSON report, and the HTML one parsed (after checking that it parses without an error
/// and fetches nothing).
fn reports(out: &Output) -> (Value, Page) {
    let json = serde_json::from_str(&out.read(".hermetic/chaos/report.json")).expect("JSON");
    let html = out.read(".hermetic/chaos/report.html");
    for external in [
        "<script", "<link", "http://", "https://", "<img", "@import", "url(",
    ] {
        assert!(!html.contains(external), "the report has `{external}`");
    }
    let dom = parse_document(RcDom::default(), Default::default()).one(html.as_str());
    let errors = dom.errors.borrow();
    assert!(
        errors.is_empty(),
        "the report does not parse cleanly: {errors:?}"
    );
    let root = dom.document.clone();
    let html_element = descendants(&root, |n| tag(n) == Some("html"));
    assert_eq!(attr(&html_element[0], "lang").as_deref(), Some("en"));
    assert_eq!(
        descendants(&root, |n| tag(n) == Some("meta")
            && attr(n, "charset").is_some())
        .len(),
        1
    );
    (json, Page(root))
}

/// A parsed page.
struct Page(Handle);

impl Page {
    fn by_id_opt(&self, id: &str) -> Option<Handle> {
        descendants(&self.0, |n| attr(n, "id").as_deref() == Some(id))
            .into_iter()
            .next()
    }

    fn by_id(&self, id: &str) -> Handle {
        self.by_id_opt(id)
            .unwrap_or_else(|| panic!("no element `#{id}`"))
    }
}

/// Every element under `node` (itself included) that `keep` accepts, in document order.
fn descendants(node: &Handle, keep: impl Fn(&Handle) -> bool + Copy) -> Vec<Handle> {
    let mut found = Vec::new();
    if keep(node) {
        found.push(node.clone());
    }
    for child in node.children.borrow().iter() {
        found.extend(descendants(child, keep));
    }
    found
}

fn tag(node: &Handle) -> Option<&str> {
    match &node.data {
        NodeData::Element { name, .. } => Some(&name.local),
        _ => None,
    }
}

fn attr(node: &Handle, name: &str) -> Option<String> {
    match &node.data {
        NodeData::Element { attrs, .. } => attrs
            .borrow()
            .iter()
            .find(|a| &*a.name.local == name)
            .map(|a| a.value.to_string()),
        _ => None,
    }
}

fn has_class(node: &Handle, class: &str) -> bool {
    attr(node, "class").is_some_and(|c| c.split_whitespace().any(|c| c == class))
}

/// The text under `node`, with runs of white space made one space.
fn text(node: &Handle) -> String {
    fn collect(node: &Handle, out: &mut String) {
        if let NodeData::Text { contents } = &node.data {
            out.push_str(&contents.borrow());
        }
        for child in node.children.borrow().iter() {
            collect(child, out);
        }
    }
    let mut out = String::new();
    collect(node, &mut out);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A table's rows, by their first cell's text: the other cells' texts.
fn rows(table: &Handle) -> BTreeMap<String, Vec<String>> {
    assert_eq!(tag(table), Some("table"));
    descendants(table, |n| tag(n) == Some("tr"))
        .iter()
        .filter_map(|row| {
            let cells: Vec<String> = row
                .children
                .borrow()
                .iter()
                .filter(|c| matches!(tag(c), Some("td" | "th")))
                .map(text)
                .collect();
            let (first, rest) = cells.split_first()?;
            Some((first.clone(), rest.to_vec()))
        })
        .collect()
}

/// The replay commands under `node`, by seed: the shrunk ones, or the others.
fn replay_commands(node: &Handle, shrunk: bool) -> BTreeMap<u64, String> {
    descendants(node, |n| {
        tag(n) == Some("code") && has_class(n, "replay") && has_class(n, "shrunk") == shrunk
    })
    .iter()
    .map(|code| {
        let seed = attr(code, "data-seed").expect("data-seed").parse().unwrap();
        (seed, text(code))
    })
    .collect()
}
