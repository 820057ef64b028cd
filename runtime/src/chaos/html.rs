//! The chaos suite's HTML report: one self-contained page (inline CSS, no script, nothing
//! fetched) that a person reads at a glance, written beside the JSON report.
//!
//! The page, top to bottom: a header with the verdict, the workflow, the fault kinds and
//! their rates, and the expectations; the violations, when there are any, each with its
//! replay command and its shrunk list of faults; a summary (outcomes, fault kinds, retries,
//! the determinism self-check); and a table with one row per seed.
//!
//! Every string that comes from the report (step names, messages, commands) is escaped.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter};

use super::plan::{Fault, FaultKind};
use super::suite::{Expect, SeedReport, Shrunk, SuiteReport};

/// The violating seeds whose details are open when the page loads; later ones are folded.
const OPEN_VIOLATIONS: usize = 10;

/// The outcomes a seed can have, in the order the summary lists them, with what each means.
const OUTCOMES: [(&str, &str); 3] = [
    ("succeeded", "the run succeeded despite its faults"),
    ("failed", "a step failed, its fault named as the cause"),
    ("hung", "the run did not end within its bound"),
];

/// The report as one HTML page.
pub fn render(report: &SuiteReport) -> String {
    Page::new(report).to_string()
}

/// A string from the report, escaped for HTML text and attribute values.
struct Esc<'a>(&'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A command from the report, escaped, that may wrap after its commas (`<wbr>` adds no
/// text: the command copies as it is).
struct Cmd<'a>(&'a str);

impl Display for Cmd<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.split(',').enumerate() {
            if i > 0 {
                f.write_str(",<wbr>")?;
            }
            Esc(part).fmt(f)?;
        }
        Ok(())
    }
}

/// A message from the report, escaped, with its `backquoted` names set as code.
struct Prose<'a>(&'a str);

impl Display for Prose<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if !self.0.matches('`').count().is_multiple_of(2) {
            return Esc(self.0).fmt(f);
        }
        for (i, part) in self.0.split('`').enumerate() {
            if i % 2 == 1 {
                write!(f, "<code>{}</code>", Esc(part))?;
            } else {
                Esc(part).fmt(f)?;
            }
        }
        Ok(())
    }
}

/// The page, with the figures its summary needs.
struct Page<'a> {
    report: &'a SuiteReport,
    stats: Stats,
}

/// What the summary counts.
#[derive(Default)]
struct Stats {
    /// Seeds by outcome.
    outcomes: BTreeMap<String, Outcome>,
    /// Every kind injected or configured, in the report's order.
    kinds: Vec<(FaultKind, KindStats)>,
    retries: usize,
    damaged: usize,
    /// Process-kill seeds: killed then resumed, and ended before the kill.
    resumed: (usize, usize),
    violating_seeds: usize,
}

/// The seeds with one outcome.
#[derive(Default)]
struct Outcome {
    seeds: usize,
    violating: usize,
}

/// One fault kind across the seeds.
#[derive(Default)]
struct KindStats {
    rate: Option<f64>,
    /// Faults of this kind injected, in all.
    injected: usize,
    /// Seeds with at least one fault of this kind.
    seeds: usize,
    /// Seeds with a step failure attributed to a fault of this kind.
    failed: usize,
    /// Seeds with this kind that violate an invariant or expectation.
    violating: usize,
    /// Shrunk (failing) fault lists that still have this kind.
    shrunk: usize,
}

impl Stats {
    fn of(report: &SuiteReport) -> Self {
        let mut stats = Stats::default();
        let mut order: Vec<FaultKind> = report.kinds.clone();
        let mut kinds: BTreeMap<FaultKind, KindStats> = BTreeMap::new();
        for (kind, rate) in &report.rates {
            kinds.entry(*kind).or_default().rate = Some(*rate);
        }
        for seed in &report.seeds {
            let outcome = stats.outcomes.entry(seed.outcome.clone()).or_default();
            outcome.seeds += 1;
            outcome.violating += usize::from(!seed.violations.is_empty());
            stats.violating_seeds += usize::from(!seed.violations.is_empty());
            stats.retries += seed.retries;
            stats.damaged += seed.damaged.len();
            match seed.resumed {
                Some(true) => stats.resumed.0 += 1,
                Some(false) => stats.resumed.1 += 1,
                None => {}
            }
            let mut seen: Vec<FaultKind> = Vec::new();
            for fault in &seed.faults {
                if !order.contains(&fault.kind) {
                    order.push(fault.kind);
                }
                kinds.entry(fault.kind).or_default().injected += 1;
                if !seen.contains(&fault.kind) {
                    seen.push(fault.kind);
                }
            }
            let failed_kinds: Vec<FaultKind> = seed
                .failed
                .iter()
                .filter(|f| f.fault.is_some())
                .filter_map(|f| fault_of(seed, &f.step).map(|fault| fault.kind))
                .collect();
            let shrunk: Vec<FaultKind> = seed
                .shrunk
                .iter()
                .flat_map(|s| s.faults.iter().map(|f| f.kind))
                .collect();
            for kind in seen {
                let k = kinds.entry(kind).or_default();
                k.seeds += 1;
                k.failed += usize::from(failed_kinds.contains(&kind));
                k.violating += usize::from(!seed.violations.is_empty());
                k.shrunk += usize::from(shrunk.contains(&kind));
            }
        }
        stats.kinds = order
            .into_iter()
            .map(|kind| (kind, kinds.remove(&kind).unwrap_or_default()))
            .collect();
        stats
    }
}

/// The fault planned for `step` in `seed`.
fn fault_of<'a>(seed: &'a SeedReport, step: &str) -> Option<&'a Fault> {
    seed.faults.iter().find(|f| f.step == step)
}

/// Whether a seed's row gets its replay command: it failed, hung or violated something.
fn needs_replay(seed: &SeedReport) -> bool {
    seed.outcome != "succeeded" || !seed.violations.is_empty()
}

impl<'a> Page<'a> {
    fn new(report: &'a SuiteReport) -> Self {
        Self {
            report,
            stats: Stats::of(report),
        }
    }

    fn passed(&self) -> bool {
        self.report.violations == 0
    }

    /// `<head>`: the title and the style sheet.
    fn head(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{} · chaos {} · {}</title>\n<style>{STYLE}</style>\n</head>\n",
            if self.passed() { "PASS" } else { "FAIL" },
            Esc(&self.report.workflow),
            plural(self.report.seeds.len(), "seed"),
        )
    }

    /// The banner: the verdict, the workflow, how many violations in how many seeds.
    fn banner(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let report = self.report;
        let (class, word) = if self.passed() {
            ("pass", "PASS")
        } else {
            ("fail", "FAIL")
        };
        let seeds = plural(report.seeds.len(), "seed");
        let spread = if self.passed() {
            format!("across {seeds}")
        } else {
            format!("in {} of {seeds}", self.stats.violating_seeds)
        };
        writeln!(
            f,
            "<header class=\"banner {class}\"><div class=\"wrap\">\
             <p class=\"verdict {class}\" id=\"verdict\">{word}</p>\
             <div class=\"headline\"><h1>Chaos report: <code>{}</code></h1>\
             <p class=\"lede\">{} {spread} · {}</p></div></div></header>",
            Esc(&report.workflow),
            plural(report.violations, "invariant violation"),
            duration(report.duration_ms),
        )
    }

    /// What the suite injected and expected, and a map of the seeds.
    fn facts(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let report = self.report;
        f.write_str("<dl class=\"facts\">")?;
        let total: f64 = report.rates.values().sum();
        write!(
            f,
            "<div><dt>Faults</dt><dd>{}<span class=\"muted\"> · a step gets one with a \
             chance of {}</span></dd></div>",
            self.rates(),
            percent(total)
        )?;
        write!(
            f,
            "<div><dt>Expects</dt><dd>{}</dd></div>",
            expectations(&report.expect)
        )?;
        writeln!(
            f,
            "<div><dt>Seeds</dt><dd>{} · {}</dd></div></dl>",
            seed_range(&report.seeds),
            seed_map(&report.seeds)
        )
    }

    /// The fault kinds, each with its rate.
    fn rates(&self) -> String {
        if self.report.rates.is_empty() {
            return "none".into();
        }
        self.report
            .kinds
            .iter()
            .filter_map(|k| Some((k, self.report.rates.get(k)?)))
            .map(|(kind, rate)| {
                format!(
                    "<span class=\"chip kind\">{kind} <b>{}</b></span>",
                    percent(*rate)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Every violating seed: its violations, faults and replay commands, shrunk and not.
    fn violations(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let violating: Vec<&SeedReport> = self
            .report
            .seeds
            .iter()
            .filter(|s| !s.violations.is_empty())
            .collect();
        if violating.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "<section id=\"violations\"><h2>Violations <span class=\"muted\">{} in {}</span>\
             </h2>",
            self.report.violations,
            plural(violating.len(), "seed")
        )?;
        for (i, seed) in violating.into_iter().enumerate() {
            violation(f, seed, i < OPEN_VIOLATIONS)?;
        }
        f.write_str("</section>\n")
    }

    /// The summary: outcomes, fault kinds, and the totals.
    fn summary(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">\n")?;
        self.outcomes(f)?;
        self.totals(f)?;
        f.write_str("</div>\n")?;
        self.kinds(f)?;
        f.write_str("</section>\n")
    }

    /// How many seeds had each outcome.
    fn outcomes(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(
            "<table id=\"outcomes\" class=\"card\"><caption>Outcomes</caption><thead><tr>\
             <th>Outcome</th><th class=\"num\">Seeds</th><th class=\"num\">With violations\
             </th><th>Meaning</th></tr></thead><tbody>\n",
        )?;
        let known = OUTCOMES.iter().map(|(name, meaning)| (*name, *meaning));
        let others = self
            .stats
            .outcomes
            .keys()
            .filter(|k| !OUTCOMES.iter().any(|(name, _)| name == k))
            .map(|k| (k.as_str(), ""));
        for (name, meaning) in known.chain(others) {
            let outcome = self.stats.outcomes.get(name);
            let seeds = outcome.map_or(0, |o| o.seeds);
            let violating = outcome.map_or(0, |o| o.violating);
            writeln!(
                f,
                "<tr class=\"outcome-{}\"><td>{}</td><td class=\"num\">{seeds}</td>\
                 <td class=\"num{}\">{violating}</td><td class=\"muted\">{meaning}</td></tr>",
                Esc(name),
                badge(name),
                if violating > 0 { " bad" } else { "" },
            )?;
        }
        writeln!(
            f,
            "</tbody><tfoot><tr><th>all</th><th class=\"num\">{}</th><th class=\"num\">{}</th>\
             <td></td></tr></tfoot></table>",
            self.report.seeds.len(),
            self.stats.violating_seeds
        )
    }

    /// Retries, damaged cache entries, resumed processes, and the determinism self-check.
    fn totals(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let stats = &self.stats;
        f.write_str("<table id=\"totals\" class=\"card\"><caption>Totals</caption><tbody>\n")?;
        let rows: [(&str, String); 5] = [
            (
                "Retries",
                format!(
                    "{} <span class=\"muted\">attempts run again</span>",
                    stats.retries
                ),
            ),
            (
                "Damaged archives",
                format!(
                    "{} <span class=\"muted\">re-run, never served</span>",
                    stats.damaged
                ),
            ),
            (
                "Process kills",
                format!(
                    "{} resumed <span class=\"muted\">· {} ended before the kill</span>",
                    stats.resumed.0, stats.resumed.1
                ),
            ),
            ("Determinism", self.determinism()),
            ("Duration", duration(self.report.duration_ms)),
        ];
        for (name, value) in rows {
            writeln!(f, "<tr><th>{name}</th><td>{value}</td></tr>")?;
        }
        f.write_str("</tbody></table>\n")
    }

    /// Whether the first seed, run twice, gave the same trace both times.
    fn determinism(&self) -> String {
        let first = self.report.seeds.first();
        match (first, &self.report.replayed_trace) {
            (Some(seed), Some(again)) if *again == seed.trace => format!(
                "<span class=\"good\">same trace</span> <span class=\"muted\">· seed {} ran \
                 twice: <code title=\"{}\">{}</code></span>",
                seed.seed,
                Esc(again),
                Esc(short(again))
            ),
            (Some(seed), Some(again)) => format!(
                "<span class=\"bad\">different traces</span> <span class=\"muted\">· seed {} \
                 ran twice: <code>{}</code> then <code>{}</code></span>",
                seed.seed,
                Esc(short(&seed.trace)),
                Esc(short(again))
            ),
            _ => "<span class=\"muted\">not checked</span>".into(),
        }
    }

    /// Each fault kind: its rate, how often it was injected, and what it did.
    fn kinds(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(
            "<table id=\"kinds\" class=\"card wide\"><caption>Fault kinds</caption><thead><tr>\
             <th>Kind</th><th class=\"num\">Rate</th><th class=\"num\">Injected</th>\
             <th class=\"num\">Seeds with it</th><th class=\"num\">Seeds failed by it</th>\
             <th class=\"num\">Seeds with violations</th><th class=\"num\">In shrunk lists</th>\
             </tr></thead><tbody>\n",
        )?;
        let zero = |n: usize, bad: bool| {
            let class = match (n, bad) {
                (0, _) => "num zero",
                (_, true) => "num bad",
                _ => "num",
            };
            format!("<td class=\"{class}\">{n}</td>")
        };
        let mut total = 0;
        for (kind, k) in &self.stats.kinds {
            total += k.injected;
            writeln!(
                f,
                "<tr><td><span class=\"chip kind\">{kind}</span></td><td class=\"num\">{}</td>\
                 {}{}{}{}{}</tr>",
                k.rate.map_or_else(|| "—".into(), percent),
                zero(k.injected, false),
                zero(k.seeds, false),
                zero(k.failed, false),
                zero(k.violating, true),
                zero(k.shrunk, true),
            )?;
        }
        writeln!(
            f,
            "</tbody><tfoot><tr><th>all</th><td></td><th class=\"num\">{total}</th>\
             <td colspan=\"4\"></td></tr></tfoot></table>"
        )
    }

    /// One row per seed, filterable without a script.
    fn seeds(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let seeds = &self.report.seeds;
        let failing = seeds.iter().filter(|s| needs_replay(s)).count();
        write!(
            f,
            "<section id=\"seeds\"><h2>Seeds</h2>\n<form class=\"filter\">Show \
             <label><input type=\"radio\" name=\"show\" id=\"show-all\" checked> all {}\
             </label><label><input type=\"radio\" name=\"show\" id=\"show-failing\"> failed or \
             violating {failing}</label><label><input type=\"radio\" name=\"show\" \
             id=\"show-violating\"> violating {}</label></form>\n",
            seeds.len(),
            self.stats.violating_seeds
        )?;
        f.write_str(
            "<table id=\"seed-table\" class=\"card wide seeds\"><colgroup>\
             <col class=\"c-seed\"><col class=\"c-outcome\"><col><col class=\"c-failed\">\
             <col class=\"c-retries\"><col class=\"c-damaged\"><col class=\"c-resumed\">\
             <col class=\"c-time\"></colgroup><thead><tr>\
             <th class=\"num\">Seed</th><th>Outcome</th><th>Faults injected</th>\
             <th>Failed steps ← fault</th><th class=\"num\">Retries</th><th>Damaged</th>\
             <th>Resumed</th><th class=\"num\">Time</th></tr></thead>\n",
        )?;
        for seed in seeds {
            seed_rows(f, seed)?;
        }
        f.write_str("</table></section>\n")
    }

    /// What the invariants are, and where the rest is.
    fn footer(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(
            "<footer class=\"wrap\">Every seed is checked against the invariants: every step \
             reaches a final state; a step that succeeds publishes the bytes of the fault-free run; a step \
             that fails has a fault planned for it; the run ends within its bound; after cache \
             faults, a run from the store never serves a damaged entry. A seed's replay \
             command runs it again with the same faults; the JSON report beside this page has \
             every field. Written by <code>hermetic chaos</code>.</footer>\n</body>\n</html>\n",
        )
    }
}

impl Display for Page<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.head(f)?;
        f.write_str("<body>\n")?;
        self.banner(f)?;
        f.write_str("<main class=\"wrap\">\n")?;
        self.facts(f)?;
        self.violations(f)?;
        self.summary(f)?;
        self.seeds(f)?;
        f.write_str("</main>\n")?;
        self.footer(f)
    }
}

/// One violating seed, as a card that folds: its violations and faults on the left, its
/// replay commands on the right.
fn violation(f: &mut Formatter<'_>, seed: &SeedReport, open: bool) -> fmt::Result {
    write!(
        f,
        "<details class=\"violation card\" id=\"violation-{}\"{}><summary><a href=\"#seed-{0}\">\
         Seed {0}</a> {} <span class=\"badge violates\">{}</span> <span class=\"first\">{}\
         </span></summary><div class=\"cols\"><div>\n<h3>Violations</h3><ul class=\"problems\">",
        seed.seed,
        if open { " open" } else { "" },
        badge(&seed.outcome),
        plural(seed.violations.len(), "violation"),
        seed.violations
            .first()
            .map(|v| Prose(v).to_string())
            .unwrap_or_default(),
    )?;
    for v in &seed.violations {
        write!(f, "<li>{}</li>", Prose(v))?;
    }
    f.write_str("</ul>\n<h3>Faults injected</h3>")?;
    fault_list(f, &seed.faults)?;
    write!(
        f,
        "</div><div>\n<h3>Replay this seed</h3><pre><code class=\"replay\" data-seed=\"{}\">{}\
         </code></pre>\n",
        seed.seed,
        Cmd(&seed.replay)
    )?;
    if let Some(shrunk) = &seed.shrunk {
        shrunk_faults(f, seed, shrunk)?;
    }
    f.write_str("</div></div></details>\n")
}

/// A failing seed's shrunk list of faults, and the command that replays only those.
fn shrunk_faults(f: &mut Formatter<'_>, seed: &SeedReport, shrunk: &Shrunk) -> fmt::Result {
    write!(
        f,
        "<h3>Shrunk to {} <span class=\"muted\">{}, after {}</span></h3>",
        plural(shrunk.faults.len(), "fault"),
        if shrunk.minimal {
            "minimal"
        } else {
            "not minimal: the run budget ran out"
        },
        plural(shrunk.runs, "run"),
    )?;
    fault_list(f, &shrunk.faults)?;
    if shrunk.violations != seed.violations {
        f.write_str("<p class=\"muted\">With only these:</p><ul class=\"problems\">")?;
        for v in &shrunk.violations {
            write!(f, "<li>{}</li>", Prose(v))?;
        }
        f.write_str("</ul>")?;
    }
    writeln!(
        f,
        "<pre><code class=\"replay shrunk\" data-seed=\"{}\">{}</code></pre>",
        seed.seed,
        Cmd(&shrunk.replay)
    )
}

/// Faults with their details, one a line.
fn fault_list(f: &mut Formatter<'_>, faults: &[Fault]) -> fmt::Result {
    if faults.is_empty() {
        return f.write_str("<p class=\"muted\">none</p>");
    }
    f.write_str("<ul class=\"faults\">")?;
    for fault in faults {
        write!(
            f,
            "<li><b>{}</b> <span class=\"chip kind\">{}</span> {}</li>",
            Esc(&fault.step),
            fault.kind,
            Esc(&fault.detail)
        )?;
    }
    f.write_str("</ul>")
}

/// A seed's row, and for a failing seed a second row with its replay command.
fn seed_rows(f: &mut Formatter<'_>, seed: &SeedReport) -> fmt::Result {
    let violating = !seed.violations.is_empty();
    let class = format!(
        "{}{}{}",
        Esc(&seed.outcome),
        if needs_replay(seed) { " failing" } else { "" },
        if violating { " violating" } else { "" }
    );
    write!(
        f,
        "<tbody class=\"seed {class}\" id=\"seed-{}\"><tr><td class=\"num seed-no\">{0}</td>\
         <td>{}",
        seed.seed,
        badge(&seed.outcome)
    )?;
    if violating {
        write!(
            f,
            " <a class=\"badge violates\" href=\"#violation-{}\">{}</a>",
            seed.seed,
            plural(seed.violations.len(), "violation")
        )?;
    }
    f.write_str("</td><td class=\"faults-cell\">")?;
    fault_chips(f, &seed.faults)?;
    f.write_str("</td><td class=\"failed-cell\">")?;
    failed_steps(f, seed)?;
    writeln!(
        f,
        "</td><td class=\"num{}\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
        if seed.retries == 0 { " zero" } else { "" },
        seed.retries,
        if seed.damaged.is_empty() {
            "<span class=\"zero\">—</span>".to_string()
        } else {
            seed.damaged
                .iter()
                .map(|s| Esc(s).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
        resumed(seed.resumed),
        duration(seed.duration_ms),
    )?;
    if needs_replay(seed) {
        writeln!(
            f,
            "<tr class=\"replay-row\"><td></td><td colspan=\"7\"><span class=\"muted\">replay\
             </span> <code class=\"replay\" data-seed=\"{}\">{}</code></td></tr>",
            seed.seed,
            Cmd(&seed.replay)
        )?;
    }
    f.write_str("</tbody>\n")
}

/// Whether a process-kill seed's run was killed and resumed.
fn resumed(resumed: Option<bool>) -> &'static str {
    match resumed {
        Some(true) => {
            "<span title=\"killed once its fault's step finished, then resumed\">yes</span>"
        }
        Some(false) => "<span title=\"the run ended before its fault's step finished\">no</span>",
        None => "<span class=\"zero\">—</span>",
    }
}

/// A seed's faults as compact chips that unfold into their details.
fn fault_chips(f: &mut Formatter<'_>, faults: &[Fault]) -> fmt::Result {
    if faults.is_empty() {
        return f.write_str("<span class=\"zero\">none</span>");
    }
    f.write_str("<details><summary>")?;
    for fault in faults {
        write!(
            f,
            "<span class=\"fault\" title=\"{}\">{} <span class=\"chip kind\">{}</span></span> ",
            Esc(&fault.detail),
            Esc(&fault.step),
            fault.kind
        )?;
    }
    f.write_str("</summary>")?;
    fault_list(f, faults)?;
    f.write_str("</details>")
}

/// A seed's failed steps, each with the fault it is attributed to (its message as a tooltip
/// and a second line).
fn failed_steps(f: &mut Formatter<'_>, seed: &SeedReport) -> fmt::Result {
    if seed.failed.is_empty() {
        return f.write_str("<span class=\"zero\">—</span>");
    }
    for failed in &seed.failed {
        let cause = match &failed.fault {
            Some(fault) => format!(
                "<span class=\"chip kind\" title=\"{}\">{}</span>",
                Esc(fault),
                Esc(fault
                    .split_once(": ")
                    .map_or(fault.as_str(), |(kind, _)| kind))
            ),
            None => "<span class=\"bad\">no fault</span>".to_string(),
        };
        write!(
            f,
            "<div class=\"failed\"><b>{}</b> ← {cause}<span class=\"message\" title=\"{}\">{}\
             </span></div>",
            Esc(&failed.step),
            Esc(&failed.message),
            Esc(&failed.message)
        )?;
    }
    Ok(())
}

/// An outcome as a coloured badge.
fn badge(outcome: &str) -> String {
    let class = match outcome {
        "succeeded" | "failed" | "hung" => outcome,
        _ => "other",
    };
    format!("<span class=\"badge {class}\">{}</span>", Esc(outcome))
}

/// One small square per seed, coloured by outcome, linking to its row.
fn seed_map(seeds: &[SeedReport]) -> String {
    let mut map = String::from("<span class=\"map\">");
    for seed in seeds {
        let class = if !seed.violations.is_empty() {
            "violating"
        } else {
            match seed.outcome.as_str() {
                "succeeded" => "succeeded",
                "failed" => "failed",
                _ => "hung",
            }
        };
        map.push_str(&format!(
            "<a class=\"{class}\" href=\"#seed-{}\" title=\"seed {0}: {}\"></a>",
            seed.seed,
            Esc(&seed.outcome)
        ));
    }
    map.push_str("</span>");
    map
}

/// The suite's expectations beyond the invariants, in words.
fn expectations(expect: &Expect) -> String {
    let mut parts = Vec::new();
    if expect.succeeds {
        parts.push("every run succeeds".to_string());
    }
    if let Some(max) = expect.max_retries {
        parts.push(format!("at most {} per run", plural(max, "retry")));
    }
    if parts.is_empty() {
        "the invariants only".into()
    } else {
        format!("the invariants, and {}", parts.join(", and "))
    }
}

/// The seeds as a range (`1 to 40`) when they follow each other, else how many.
fn seed_range(seeds: &[SeedReport]) -> String {
    match (seeds.first(), seeds.last()) {
        (Some(first), Some(last))
            if seeds.windows(2).all(|w| w[1].seed == w[0].seed + 1) && seeds.len() > 1 =>
        {
            format!("{} to {}", first.seed, last.seed)
        }
        (Some(first), _) if seeds.len() == 1 => format!("seed {}", first.seed),
        _ => plural(seeds.len(), "seed"),
    }
}

/// `n thing` or `n things` (`retry` becomes `retries`).
fn plural(n: usize, thing: &str) -> String {
    match (n, thing.strip_suffix('y')) {
        (1, _) => format!("1 {thing}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {thing}s"),
    }
}

/// A rate as a percentage: `4.5%`, `50%`.
fn percent(rate: f64) -> String {
    let text = format!("{:.1}", rate * 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Milliseconds for a person: `850 ms`, `12.3 s`, `4 min 05 s`.
fn duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// The start of a hash.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The style sheet: light and dark, compact rows, and the seed filter (`:has`, no script;
/// a browser without it shows every row).
const STYLE: &str = r#"
:root{--bg:#f6f8fa;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#fff;--code:#eff2f5;
--ok:#1a7f37;--ok-bg:#dafbe1;--warn:#9a6700;--warn-bg:#fff8c5;--bad:#cf222e;--bad-bg:#ffebe9;
--hung:#8250df;--hung-bg:#fbefff;--kind:#0550ae;--kind-bg:#ddf4ff}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--card:#151b23;--code:#1f2630;--ok:#3fb950;--ok-bg:#12261e;--warn:#d29922;
--warn-bg:#272115;--bad:#f85149;--bad-bg:#2d1214;--hung:#ab7df8;--hung-bg:#231a33;
--kind:#79c0ff;--kind-bg:#0c2d6b}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
code,pre{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
.wrap{max-width:1240px;margin:0 auto;padding:0 24px}
.banner{color:#fff;padding:22px 0 20px}
.banner.pass{background:linear-gradient(90deg,#1a7f37,#2da44e)}
.banner.fail{background:linear-gradient(90deg,#a40e26,#cf222e)}
.banner .wrap{display:flex;align-items:center;gap:24px}
.verdict{margin:0;font-size:40px;font-weight:800;letter-spacing:.06em;padding:4px 22px;
border:3px solid #fff;border-radius:10px;line-height:1.2}
.banner h1{margin:0;font-size:24px;font-weight:600}
.banner h1 code{font-size:22px;background:rgba(255,255,255,.18);padding:1px 8px;border-radius:6px}
.lede{margin:4px 0 0;font-size:17px;opacity:.95}
h2{font-size:19px;margin:28px 0 10px}
h3{font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:12px 0 6px}
.muted{color:var(--muted);font-weight:normal}
.facts{display:grid;grid-template-columns:1fr;gap:6px;margin:18px 0 0;padding:14px 18px;
background:var(--card);border:1px solid var(--line);border-radius:8px}
.facts div{display:flex;gap:12px;align-items:baseline}
.facts dt{width:72px;flex:none;font-weight:600;color:var(--muted)}
.facts dd{margin:0}
.chip{display:inline-block;padding:0 6px;border-radius:10px;font-size:12px;line-height:18px;
white-space:nowrap;vertical-align:middle}
.chip.kind{background:var(--kind-bg);color:var(--kind);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;
line-height:19px;white-space:nowrap;text-decoration:none;vertical-align:middle}
.badge.succeeded{background:var(--ok-bg);color:var(--ok)}
.badge.failed{background:var(--warn-bg);color:var(--warn)}
.badge.hung,.badge.other{background:var(--hung-bg);color:var(--hung)}
.badge.violates{background:var(--bad);color:#fff}
.good{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}
.zero{color:var(--muted);opacity:.6}
.map{display:inline-flex;flex-wrap:wrap;gap:2px;vertical-align:middle;max-width:900px}
.map a{width:12px;height:12px;border-radius:2px;display:inline-block}
.map .succeeded{background:var(--ok)}.map .failed{background:#d4a72c}
.map .hung{background:var(--hung)}.map .violating{background:var(--bad);outline:1px solid var(--bad)}
.cards{display:grid;grid-template-columns:minmax(0,1.3fr) minmax(0,1fr);gap:16px;align-items:start}
@media (max-width:900px){.cards{grid-template-columns:1fr}}
table.card{border-collapse:collapse;background:var(--card);border:1px solid var(--line);
border-radius:8px;width:100%}
table.wide{margin-top:16px}
caption{text-align:left;font-weight:600;padding:8px 10px 4px;caption-side:top}
th,td{padding:4px 10px;text-align:left;vertical-align:top;border-top:1px solid var(--line)}
thead th{font-size:12px;color:var(--muted);font-weight:600;background:var(--bg)}
#totals th{width:190px;font-weight:600}
tfoot th,tfoot td{font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.num.bad{color:var(--bad)}
.card{box-shadow:0 1px 0 rgba(31,35,40,.04)}
.seeds{table-layout:fixed}
.seeds td{padding-top:3px;padding-bottom:3px}
.c-seed{width:58px}.c-outcome{width:160px}.c-failed{width:240px}.c-retries{width:66px}
.c-damaged{width:110px}.c-resumed{width:100px}.c-time{width:74px}
.seeds tbody.violating{background:var(--bad-bg)}
.seeds tbody.violating td:first-child{box-shadow:inset 4px 0 var(--bad)}
.seeds tbody.failing:not(.violating) td:first-child{box-shadow:inset 4px 0 #d4a72c}
.seed-no{font-weight:600}
.replay-row td{border-top:none;padding-top:0}
.replay-row code{user-select:all;background:var(--code);padding:1px 6px;border-radius:4px;overflow-wrap:anywhere}
.fault{white-space:nowrap;margin-right:4px}
details>summary{cursor:pointer}
.faults-cell details>summary{list-style-position:outside}
.faults-cell ul.faults{margin:4px 0 2px}
ul.faults,ul.problems{margin:0;padding-left:18px}
ul.faults li{margin:2px 0}
ul.problems li{color:var(--bad);margin:2px 0}
.failed{overflow:hidden;text-overflow:ellipsis}
.message{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;
color:var(--muted);font-size:12px}
pre{margin:4px 0 10px;background:var(--code);padding:8px 10px;border-radius:6px;
white-space:pre-wrap;overflow-wrap:anywhere;border:1px solid var(--line)}
pre code{user-select:all}
.violation{border:1px solid var(--bad);border-left:5px solid var(--bad);background:var(--card);
border-radius:8px;padding:8px 14px;margin:0 0 10px}
.violation>summary{font-weight:600;font-size:15px}
.violation>summary a{color:inherit}
.violation .first{font-weight:normal;color:var(--bad)}
.violation[open] .first{display:none}
.cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:24px}
@media (max-width:900px){.cols{grid-template-columns:1fr}}
.filter{margin:0 0 -6px;color:var(--muted)}
.filter label{margin-left:12px;cursor:pointer}
body:has(#show-failing:checked) tbody.seed:not(.failing),
body:has(#show-violating:checked) tbody.seed:not(.violating){display:none}
footer{margin:32px 0 40px;color:var(--muted);font-size:12.5px;max-width:900px}
:target{outline:2px solid var(--kind);outline-offset:-2px}
"#;

#[cfg(test)]
mod tests {
    use super::super::suite::FailedStep;
    use super::*;

    fn fault(step: &str, kind: FaultKind, detail: &str) -> Fault {
        Fault {
            step: step.into(),
            kind,
            detail: detail.into(),
            memory: None,
            fuel: None,
            clock_skew: None,
            clock_jump: None,
            offset: 0,
            wasi: None,
        }
    }

    fn seed(seed: u64, outcome: &str, faults: Vec<Fault>) -> SeedReport {
        SeedReport {
            seed,
            faults,
            outcome: outcome.into(),
            failed: Vec::new(),
            retries: 0,
            damaged: Vec::new(),
            violations: Vec::new(),
            duration_ms: 40,
            trace: "ab".repeat(32),
            replay: format!(
                "hermetic chaos hermetic.yaml --faults fuel,clock --rate 0.5 --seeds {seed}"
            ),
            resumed: None,
            shrunk: None,
        }
    }

    fn report(seeds: Vec<SeedReport>) -> SuiteReport {
        let violations = seeds.iter().map(|s| s.violations.len()).sum();
        SuiteReport {
            workflow: "demo".into(),
            kinds: vec![FaultKind::Fuel, FaultKind::Clock],
            rates: [(FaultKind::Fuel, 0.25), (FaultKind::Clock, 0.25)].into(),
            expect: Expect::default(),
            replayed_trace: seeds.first().map(|s| s.trace.clone()),
            seeds,
            violations,
            duration_ms: 1234,
        }
    }

    /// A passing suite: one seed succeeded, one failed under a fuel fault.
    fn passing() -> SuiteReport {
        let mut failed = seed(
            2,
            "failed",
            vec![fault("build", FaultKind::Fuel, "fuel 9000")],
        );
        failed.failed.push(FailedStep {
            step: "build".into(),
            message: "ran out of fuel".into(),
            fault: Some("fuel: fuel 9000".into()),
        });
        failed.retries = 1;
        report(vec![seed(1, "succeeded", Vec::new()), failed])
    }

    #[test]
    fn a_passing_suite_says_pass_and_replays_its_failed_seed() {
        let page = render(&passing());
        assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">"));
        assert!(page.contains("<meta charset=\"utf-8\">"));
        assert!(page.contains("<p class=\"verdict pass\" id=\"verdict\">PASS</p>"));
        assert!(page.contains("0 invariant violations"));
        assert!(!page.contains("id=\"violations\""));
        // The failed seed's row has its replay command; the succeeded one's has none.
        assert!(page.contains(
            "<code class=\"replay\" data-seed=\"2\">hermetic chaos hermetic.yaml --faults \
             fuel,<wbr>clock --rate 0.5 --seeds 2</code>"
        ));
        assert!(!page.contains("data-seed=\"1\""));
        // The outcomes and the kinds are counted.
        assert!(page.contains(
            "<tr class=\"outcome-failed\"><td><span class=\"badge failed\">failed</span></td>\
             <td class=\"num\">1</td>"
        ));
        assert!(page.contains("<span class=\"good\">same trace</span>"));
        assert!(page.contains("<span class=\"chip kind\">fuel <b>25%</b></span>"));
        // Self-contained.
        for external in ["<script", "<link", "http://", "https://", "<img", "@import"] {
            assert!(!page.contains(external), "{external}");
        }
    }

    #[test]
    fn a_failing_suite_says_fail_and_shows_the_shrunk_replay() {
        let mut bad = seed(
            3,
            "succeeded",
            vec![
                fault("stamp", FaultKind::Clock, "wall clock skewed by 3 days"),
                fault("other", FaultKind::Fuel, "fuel 1000"),
            ],
        );
        bad.violations
            .push("step `stamp` succeeded with outputs that differ".into());
        bad.shrunk = Some(Shrunk {
            faults: vec![fault(
                "stamp",
                FaultKind::Clock,
                "wall clock skewed by 3 days",
            )],
            violations: bad.violations.clone(),
            minimal: true,
            runs: 1,
            replay: "hermetic chaos hermetic.yaml --faults fuel,clock --rate 0.5 --seeds 3 --only \
                     stamp:clock"
                .into(),
        });
        let mut suite = passing();
        suite.seeds.push(bad);
        suite.violations = 1;
        let page = render(&suite);
        assert!(page.contains("<p class=\"verdict fail\" id=\"verdict\">FAIL</p>"));
        assert!(page.contains("<title>FAIL · chaos demo · 3 seeds</title>"));
        assert!(page.contains("1 invariant violation in 1 of 3 seeds"));
        // The violations come before the summary.
        let violations = page.find("id=\"violations\"").unwrap();
        assert!(violations < page.find("id=\"summary\"").unwrap());
        assert!(
            page.contains("<li>step <code>stamp</code> succeeded with outputs that differ</li>")
        );
        assert!(page.contains(
            "<code class=\"replay\" data-seed=\"3\">hermetic chaos hermetic.yaml --faults \
             fuel,<wbr>clock --rate 0.5 --seeds 3</code>"
        ));
        assert!(page.contains(
            "<code class=\"replay shrunk\" data-seed=\"3\">hermetic chaos hermetic.yaml --faults \
             fuel,<wbr>clock --rate 0.5 --seeds 3 --only stamp:clock</code>"
        ));
        assert!(page.contains("Shrunk to 1 fault <span class=\"muted\">minimal, after 1 run"));
    }

    #[test]
    fn strings_from_the_report_are_escaped() {
        let mut suite = passing();
        suite.workflow = "<b>wf</b>".into();
        let mut evil = seed(
            9,
            "failed",
            vec![fault(
                "<script>alert(1)</script>",
                FaultKind::Fuel,
                "\"quoted\" & 'single'",
            )],
        );
        evil.failed.push(FailedStep {
            step: "<script>alert(1)</script>".into(),
            message: "<img src=x onerror=alert(1)>".into(),
            fault: Some("fuel: <x>".into()),
        });
        evil.violations.push("step `<script>` lied".into());
        evil.replay = "hermetic chaos '<x>' --seeds 9 && rm -rf /".into();
        suite.seeds.push(evil);
        suite.violations = 1;
        let page = render(&suite);
        assert!(!page.contains("<script"));
        assert!(!page.contains("<img"));
        assert!(!page.contains("<b>wf</b>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("title=\"&quot;quoted&quot; &amp; &#39;single&#39;\""));
        assert!(page.contains("step <code>&lt;script&gt;</code> lied"));
        assert!(page.contains("hermetic chaos &#39;&lt;x&gt;&#39; --seeds 9 &amp;&amp; rm -rf /"));
        assert_eq!(Esc("a<b>&\"c'").to_string(), "a&lt;b&gt;&amp;&quot;c&#39;");
        assert_eq!(Prose("odd ` tick").to_string(), "odd ` tick");
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(percent(0.5 / 11.0), "4.5%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(245_000), "4 min 05 s");
        assert_eq!(plural(2, "retry"), "2 retries");
        assert_eq!(plural(1, "seed"), "1 seed");
        assert_eq!(
            expectations(&Expect {
                succeeds: true,
                max_retries: Some(3)
            }),
            "the invariants, and every run succeeds, and at most 3 retries per run"
        );
    }
}
