//! `junit` in the real sandbox, built as `hermetic run` builds it.

use hermetic_runtime::testing::TaskTest;
use serde_json::json;

#[test]
fn merges_reports_in_the_sandbox() {
    let run = TaskTest::task("junit")
        .input(
            "reports/unit.xml",
            r#"<?xml version="1.0"?>
<testsuite name="unit" tests="7" timestamp="2024-05-01T10:00:00" hostname="ci" time="0.3">
  <testcase name="parses" classname="unit.Parse" time="0.1"/>
  <testcase name="rejects &quot;bad&quot;" classname="unit.Parse" time="0.2">
    <failure message="left != right" type="panic">assertion failed: 1 &lt; 0</failure>
  </testcase>
</testsuite>
"#,
        )
        .dep_output(
            "it",
            "junit.xml",
            r#"<testsuites><testsuite name="integration"><testcase name="boots"><skipped/></testcase></testsuite><testsuite name="cli"><testcase name="help"/></testsuite></testsuites>"#,
        )
        .run();
    run.assert_success();
    assert_eq!(
        run.output_str("junit.xml"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" failures="1" errors="0" skipped="1">
  <testsuite name="cli" tests="1" failures="0" errors="0" skipped="0">
    <testcase name="help"/>
  </testsuite>
  <testsuite name="integration" tests="1" failures="0" errors="0" skipped="1">
    <testcase name="boots">
      <skipped/>
    </testcase>
  </testsuite>
  <testsuite name="unit" tests="2" failures="1" errors="0" skipped="0">
    <testcase name="parses" classname="unit.Parse"/>
    <testcase name="rejects &quot;bad&quot;" classname="unit.Parse">
      <failure message="left != right" type="panic">assertion failed: 1 &lt; 0</failure>
    </testcase>
  </testsuite>
</testsuites>
"#
    );
    assert_eq!(run.outputs.len(), 1);
    assert_eq!(run.progress, vec![(1, Some(2)), (2, Some(2))]);
}

#[test]
fn keeps_time_and_reads_the_line_format() {
    let run = TaskTest::task("junit")
        .input(
            "a.xml",
            r#"<testsuite name="a" time="1.25"><testcase name="t" time="0.5"/></testsuite>"#,
        )
        .dep_output(
            "smoke",
            "results.txt",
            "PASS starts\nFAIL stops: timed out\n",
        )
        .params(json!({
            "inputs": ["a.xml", "/deps/smoke/results.txt"],
            "output": "reports/all.xml",
            "keep_time": true,
            "name": "all",
        }))
        .run();
    run.assert_success();
    assert_eq!(
        run.output_str("reports/all.xml"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="all" tests="3" failures="1" errors="0" skipped="0">
  <testsuite name="a" tests="1" failures="0" errors="0" skipped="0" time="1.25">
    <testcase name="t" time="0.5"/>
  </testsuite>
  <testsuite name="results" tests="2" failures="1" errors="0" skipped="0">
    <testcase name="starts" classname="results"/>
    <testcase name="stops" classname="results">
      <failure message="timed out"/>
    </testcase>
  </testsuite>
</testsuites>
"#
    );
}

#[test]
fn a_report_that_is_not_junit_fails_naming_it() {
    let run = TaskTest::task("junit")
        .input("ok.xml", "<testsuite name=\"ok\"/>")
        .input("page.xml", "<html><body/></html>")
        .run();
    run.assert_exit(1);
    assert_eq!(
        run.stderr_str(),
        "error: /in/page.xml: expected <testsuites> or <testsuite> as the root element, found <html>\n"
    );
    assert!(run.outputs.is_empty());
}
