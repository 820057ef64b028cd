//! Samples over rounds, and the table printed at the end.

use std::time::Duration;

/// One figure measured once per round, in seconds.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    /// One value per round.
    pub rounds: Vec<f64>,
}

impl Figure {
    /// Adds one round's value.
    pub fn push(&mut self, value: f64) {
        self.rounds.push(value);
    }

    /// Adds one round's value measured as `total` over `count` repetitions.
    pub fn push_per(&mut self, total: Duration, count: usize) {
        self.rounds.push(total.as_secs_f64() / count.max(1) as f64);
    }

    /// The median over rounds (the machine is noisy: a mean would follow the outliers).
    pub fn median(&self) -> f64 {
        let mut v = self.rounds.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    fn min(&self) -> f64 {
        self.rounds.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.rounds
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// Formats seconds with a unit that keeps three or four significant digits.
pub fn time(secs: f64) -> String {
    if !secs.is_finite() {
        "n/a".into()
    } else if secs.abs() < 1e-3 {
        format!("{:.1} µs", secs * 1e6)
    } else if secs.abs() < 1.0 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

/// Formats a rate in events per second, e.g. `12.3 k/s`.
pub fn per_sec(rate: f64) -> String {
    if !rate.is_finite() {
        "n/a".into()
    } else if rate.abs() >= 1e6 {
        format!("{:.2} M/s", rate / 1e6)
    } else if rate.abs() >= 1e3 {
        format!("{:.1} k/s", rate / 1e3)
    } else {
        format!("{rate:.0} /s")
    }
}

/// Formats a throughput in bytes per second as decimal megabytes (10⁶ bytes) per second.
pub fn mb_per_sec(rate: f64) -> String {
    if rate.is_finite() {
        format!("{:.0} MB/s", rate / 1e6)
    } else {
        "n/a".into()
    }
}

/// Formats a count with thousands separators, e.g. `1,000`.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Formats a byte count.
pub fn bytes(n: u64) -> String {
    if n >= 10 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
    } else {
        format!("{:.0} KiB", n as f64 / 1024.0)
    }
}

/// A row of the table.
#[derive(Debug)]
enum Row {
    Heading(String),
    Figure {
        label: String,
        value: String,
        ratio: String,
        spread: String,
    },
    Note(String),
}

/// The table, printed on stdout at the end.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// Starts a section.
    pub fn heading(&mut self, text: impl Into<String>) {
        self.rows.push(Row::Heading(text.into()));
    }

    /// A time figure with its ratio to `reference` (a median), e.g. `2.31×`.
    pub fn time(&mut self, label: impl Into<String>, fig: &Figure, reference: Option<f64>) {
        let ratio = reference
            .map(|r| format!("{:.2}×", fig.median() / r))
            .unwrap_or_default();
        self.time_with(label, fig, ratio);
    }

    /// A time figure with a free-form ratio column.
    pub fn time_with(&mut self, label: impl Into<String>, fig: &Figure, ratio: String) {
        self.value_with(label, fig, time, ratio);
    }

    /// A figure that is not a time (a rate, a throughput), shown with `format`, with a
    /// free-form ratio column.
    pub fn value_with(
        &mut self,
        label: impl Into<String>,
        fig: &Figure,
        format: fn(f64) -> String,
        ratio: String,
    ) {
        let spread = if fig.rounds.len() > 1 {
            format!("{} … {}", format(fig.min()), format(fig.max()))
        } else {
            String::new()
        };
        self.rows.push(Row::Figure {
            label: label.into(),
            value: format(fig.median()),
            ratio,
            spread,
        });
    }

    /// A line of explanation under the figures.
    pub fn note(&mut self, text: impl Into<String>) {
        self.rows.push(Row::Note(text.into()));
    }

    /// Prints the table.
    pub fn print(&self, rounds: usize) {
        let w = self
            .rows
            .iter()
            .filter_map(|r| match r {
                Row::Figure { label, .. } => Some(label.chars().count()),
                _ => None,
            })
            .max()
            .unwrap_or(20);
        println!(
            "{:<w$}  {:>12}  {:>9}  range over {rounds} rounds",
            "figure", "value", "ratio"
        );
        for row in &self.rows {
            match row {
                Row::Heading(h) => println!("\n## {h}"),
                Row::Figure {
                    label,
                    value,
                    ratio,
                    spread,
                } => println!("{label:<w$}  {value:>12}  {ratio:>9}  {spread}"),
                Row::Note(n) => println!("   {n}"),
            }
        }
    }
}
