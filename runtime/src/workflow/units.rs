//! Human-friendly units for limits: durations (`30s`, `1h30m`), sizes (`512MiB`) and fuel
//! counts (`10G`).
//!
//! Used by the workflow file (`timeout`, `memory`, `fuel`) and by the CLI flags
//! `--timeout`, `--memory` and `--fuel`, so that both accept and explain the same syntax.
//! Every error says what was wrong and shows valid examples.

use std::fmt;
use std::time::Duration;

/// The longest accepted duration: 7 days.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Valid duration examples, for messages.
pub const DURATION_EXAMPLES: &str = "`30s`, `500ms`, `2m`, `1h30m`, `1.5s`";
/// Valid size examples, for messages.
pub const SIZE_EXAMPLES: &str = "`512MiB`, `2GiB`, `100MB`, `65536`";
/// Valid fuel examples, for messages.
pub const FUEL_EXAMPLES: &str = "`10G`, `500M`, `10_000_000`";

/// What kind of quantity failed to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    /// A duration such as `30s`.
    Duration,
    /// A size in bytes such as `512MiB`.
    Size,
    /// An instruction-fuel count such as `10G`.
    Fuel,
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Duration => "duration",
            Self::Size => "size",
            Self::Fuel => "fuel amount",
        })
    }
}

/// Why a duration, size or fuel count was rejected.
///
/// `Display` gives a complete one-line message:
/// ``invalid duration `30`: a bare number has no unit; write `30s` for 30 seconds``.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitError {
    /// What was being parsed.
    pub kind: UnitKind,
    /// The text as given.
    pub input: String,
    /// What is wrong with it, e.g. "a bare number has no unit".
    pub problem: String,
    /// What to write instead, with examples.
    pub help: String,
}

impl UnitError {
    fn new(kind: UnitKind, input: &str, problem: impl Into<String>) -> Self {
        let examples = match kind {
            UnitKind::Duration => DURATION_EXAMPLES,
            UnitKind::Size => SIZE_EXAMPLES,
            UnitKind::Fuel => FUEL_EXAMPLES,
        };
        Self {
            kind,
            input: input.to_owned(),
            problem: problem.into(),
            help: format!("valid {kind}s look like {examples}"),
        }
    }

    fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} `{}`: {}; {}",
            self.kind, self.input, self.problem, self.help
        )
    }
}

impl std::error::Error for UnitError {}

/// A decimal number split into its integer and fractional digits, e.g. `1.50` → (1, "50").
struct Decimal<'a> {
    whole: &'a str,
    fraction: &'a str,
}

/// Splits `text` into a leading decimal number (digits, optional `.digits`, `_` allowed
/// between digits when `underscores`) and the rest.
fn split_number(text: &str, underscores: bool) -> (&str, &str) {
    let end = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.' || (underscores && c == '_')))
        .map_or(text.len(), |(i, _)| i);
    text.split_at(end)
}

/// Whether every `_` in `number` sits between two digits (`10_000`, not `_1` or `1_`).
fn underscores_between_digits(number: &str) -> bool {
    let bytes = number.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'_'
            || (i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
    })
}

fn parse_decimal(number: &str) -> Option<Decimal<'_>> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits_ok = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) {
        return None;
    }
    if number.contains('.') && fraction.is_empty() {
        return None;
    }
    Some(Decimal { whole, fraction })
}

/// `decimal × multiplier`, exactly. `None` on overflow; `Err(())` if the result is not a
/// whole number.
fn scale(decimal: &Decimal<'_>, multiplier: u128) -> Option<Result<u128, ()>> {
    let whole: u128 = decimal.whole.parse().ok()?;
    let mut total = whole.checked_mul(multiplier)?;
    if !decimal.fraction.is_empty() {
        if decimal.fraction.len() > 18 {
            return Some(Err(()));
        }
        let numerator: u128 = decimal.fraction.parse().ok()?;
        let denominator = 10u128.pow(decimal.fraction.len() as u32);
        let scaled = numerator.checked_mul(multiplier)?;
        if scaled % denominator != 0 {
            return Some(Err(()));
        }
        total = total.checked_add(scaled / denominator)?;
    }
    Some(Ok(total))
}

fn duration_unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 60 * 60 * 1_000_000_000,
        "d" => 24 * 60 * 60 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a duration: one or more `<number><unit>` parts, largest unit first, with units
/// `ms`, `s`, `m`, `h` and `d`, e.g. `30s`, `500ms`, `2m`, `1h30m`, `1.5s`.
///
/// A bare number is rejected as ambiguous. The result must be greater than zero and at
/// most 7 days ([`MAX_DURATION`]).
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let err = |problem: &str| UnitError::new(UnitKind::Duration, input, problem);
    let text = input.trim();
    if text.is_empty() {
        return Err(err("it is empty"));
    }
    if let Some(rest) = text.strip_prefix('-') {
        return Err(err("a duration cannot be negative")
            .with_help(format!("write a positive duration such as `{rest}`")));
    }
    let (number, rest) = split_number(text, false);
    if rest.is_empty() && parse_decimal(number).is_some() {
        return Err(err("a bare number has no unit").with_help(format!(
            "write `{number}s` for {number} seconds, or use another unit: `500ms`, `2m`, `1h`"
        )));
    }

    let mut nanos: u128 = 0;
    let mut previous_unit: Option<(u128, &str)> = None;
    let mut remaining = text;
    while !remaining.is_empty() {
        let (number, rest) = split_number(remaining, false);
        let unit_end = rest
            .char_indices()
            .find(|&(_, c)| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let (unit, rest) = rest.split_at(unit_end);
        let Some(decimal) = parse_decimal(number) else {
            return Err(if number.is_empty() {
                err(&format!("expected a number before `{unit}`"))
            } else {
                err(&format!("`{number}` is not a number"))
            });
        };
        if unit.is_empty() {
            return Err(err(&format!("`{number}` has no unit")).with_help(format!(
                "add a unit after every number (`ms`, `s`, `m`, `h`, `d`), e.g. {DURATION_EXAMPLES}"
            )));
        }
        let Some(unit_nanos) = duration_unit_nanos(unit) else {
            return Err(err(&format!("unknown unit `{unit}`")).with_help(format!(
                "use `ms`, `s`, `m` (minutes), `h` or `d`, e.g. {DURATION_EXAMPLES}"
            )));
        };
        if let Some((previous, previous_name)) = previous_unit
            && unit_nanos >= previous
        {
            return Err(err(&format!("`{unit}` comes after `{previous_name}`"))
                .with_help("write each unit once, largest first, e.g. `1h30m` or `2m30s`"));
        }
        previous_unit = Some((unit_nanos, unit));
        let part = scale(&decimal, unit_nanos)
            .and_then(Result::ok)
            .ok_or_else(|| err("it is too precise or too large"))?;
        nanos = nanos
            .checked_add(part)
            .ok_or_else(|| err("it is too large"))?;
        remaining = rest;
    }

    if nanos == 0 {
        return Err(err("it must be longer than zero"));
    }
    if nanos > MAX_DURATION.as_nanos() {
        return Err(err("it is longer than the maximum of 7 days")
            .with_help("use at most `7d` (or `168h`)"));
    }
    let secs = (nanos / 1_000_000_000) as u64;
    let subsec = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, subsec))
}

fn size_multiplier(unit: &str) -> Option<u128> {
    const K: u128 = 1000;
    const KI: u128 = 1024;
    let (prefix, suffix) = match unit.char_indices().nth(1) {
        Some((i, _)) => unit.split_at(i),
        None => (unit, ""),
    };
    let power = match prefix {
        "K" | "k" => 1,
        "M" => 2,
        "G" => 3,
        "T" => 4,
        "B" if suffix.is_empty() => return Some(1),
        _ => return None,
    };
    match suffix {
        "" | "B" => Some(K.pow(power)),
        "iB" => Some(KI.pow(power)),
        _ => None,
    }
}

/// Parses a size in bytes: a plain integer (bytes), or a number with a unit — decimal
/// `K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB` (powers of 1000) or binary `KiB`, `MiB`, `GiB`,
/// `TiB` (powers of 1024), optionally separated by a space (`512 MiB`). `B` is accepted for
/// bytes. The case of `B` and `iB` is exact: `Mb` (megabits) and `mib` are rejected.
///
/// Fractions are accepted when they come out as whole bytes (`1.5GiB`). The result must be
/// greater than zero and fit in a `u64`.
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let err = |problem: &str| UnitError::new(UnitKind::Size, input, problem);
    let text = input.trim();
    if text.is_empty() {
        return Err(err("it is empty"));
    }
    if text.starts_with('-') {
        return Err(err("a size cannot be negative"));
    }
    let (number, rest) = split_number(text, true);
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    let digits = number.replace('_', "");
    let Some(decimal) = parse_decimal(&digits).filter(|_| underscores_between_digits(number))
    else {
        return Err(if number.is_empty() {
            err("it does not start with a number")
        } else {
            err(&format!("`{number}` is not a number"))
        });
    };
    let multiplier = if unit.is_empty() {
        1
    } else {
        size_multiplier(unit).ok_or_else(|| {
            let lower = unit.to_ascii_lowercase();
            let problem = format!("unknown unit `{unit}`");
            if lower.ends_with("ib") {
                err(&problem).with_help(format!(
                    "binary units are written `KiB`, `MiB`, `GiB`, `TiB`, e.g. {SIZE_EXAMPLES}"
                ))
            } else if lower.ends_with('b') && !unit.ends_with('B') {
                err(&problem).with_help(format!(
                    "a lowercase `b` means bits; write `{}B` for bytes, or use {SIZE_EXAMPLES}",
                    &unit[..unit.len() - 1]
                ))
            } else {
                err(&problem).with_help(format!(
                    "use `KB`/`MB`/`GB`/`TB` (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB` \
                     (powers of 1024), e.g. {SIZE_EXAMPLES}"
                ))
            }
        })?
    };
    let bytes = match scale(&decimal, multiplier) {
        None => None,
        Some(Err(())) => return Err(err("it is not a whole number of bytes")),
        Some(Ok(bytes)) => u64::try_from(bytes).ok(),
    }
    .ok_or_else(|| {
        err("it is too large").with_help("the largest size is 16 EiB (2^64 - 1 bytes)")
    })?;
    if bytes == 0 {
        return Err(err("it must be greater than zero"));
    }
    Ok(bytes)
}

/// Parses a fuel count (wasm instructions, roughly): a plain integer, optionally with `_`
/// separators (`10_000_000`), or a number with a decimal suffix `K`, `M` or `G`
/// (`10G` = 10 000 000 000). Must be greater than zero.
pub fn parse_fuel(input: &str) -> Result<u64, UnitError> {
    let err = |problem: &str| UnitError::new(UnitKind::Fuel, input, problem);
    let text = input.trim();
    if text.is_empty() {
        return Err(err("it is empty"));
    }
    if text.starts_with('-') {
        return Err(err("fuel cannot be negative"));
    }
    let (number, unit) = split_number(text, true);
    let digits = number.replace('_', "");
    let Some(decimal) = parse_decimal(&digits).filter(|_| underscores_between_digits(number))
    else {
        return Err(if number.is_empty() {
            err("it does not start with a number")
        } else {
            err(&format!("`{number}` is not a number"))
        });
    };
    let multiplier: u128 = match unit {
        "" => 1,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => {
            return Err(err(&format!("unknown suffix `{unit}`")).with_help(format!(
                "fuel is a count: use a plain number or the suffixes `K`, `M`, `G` \
                 (thousand, million, billion), e.g. {FUEL_EXAMPLES}"
            )));
        }
    };
    let fuel = match scale(&decimal, multiplier) {
        None => None,
        Some(Err(())) => return Err(err("it is not a whole number")),
        Some(Ok(n)) => u64::try_from(n).ok(),
    }
    .ok_or_else(|| err("it is too large").with_help("the largest amount is 2^64 - 1"))?;
    if fuel == 0 {
        return Err(err("it must be greater than zero"));
    }
    Ok(fuel)
}

/// Formats `value / unit` with at most two decimals, without trailing zeros.
fn format_ratio(value: u128, unit: u128) -> String {
    let hundredths = (value * 100 + unit / 2) / unit;
    let (whole, frac) = (hundredths / 100, hundredths % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

/// Formats a duration compactly: `500ms`, `1.5s`, `2m`, `1h30m`, `1h0m5s`.
#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000 {
        return format!("{}µs", format_ratio(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", format_ratio(nanos, 1_000_000));
    }
    let secs = duration.as_secs();
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sub_nanos = u128::from(duration.subsec_nanos());
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 || (hours > 0 && (seconds > 0 || sub_nanos > 0)) {
        out.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 || sub_nanos > 0 {
        let secs_nanos = u128::from(seconds) * 1_000_000_000 + sub_nanos;
        out.push_str(&format!("{}s", format_ratio(secs_nanos, 1_000_000_000)));
    }
    out
}

/// Formats a size in binary units: `100 B`, `512 MiB`, `1.5 GiB`, `1.33 KiB` (at most two
/// decimals).
#[must_use]
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let bytes = u128::from(bytes);
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 1024u128;
    let mut name = UNITS[0];
    for next in &UNITS[1..] {
        if bytes < unit * 1024 {
            break;
        }
        unit *= 1024;
        name = next;
    }
    format!("{} {name}", format_ratio(bytes, unit))
}

/// Formats a fuel count with a decimal suffix when it is exact: `10G`, `500M`, `1234`.
#[must_use]
pub fn format_fuel(fuel: u64) -> String {
    for (unit, suffix) in [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "K")] {
        if fuel >= unit && fuel.is_multiple_of(unit) {
            return format!("{}{suffix}", fuel / unit);
        }
    }
    fuel.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(secs(30.0)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(secs(120.0)));
        assert_eq!(parse_duration("1h"), Ok(secs(3600.0)));
        assert_eq!(parse_duration("1h30m"), Ok(secs(5400.0)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 2m30s "), Ok(secs(150.0)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("7d"), Ok(MAX_DURATION));
        assert_eq!(
            parse_duration("1d2h3m4s5ms"),
            Ok(Duration::from_millis(93_784_005))
        );
    }

    #[test]
    fn bare_numbers_are_ambiguous() {
        let e = parse_duration("30").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid duration `30`: a bare number has no unit; write `30s` for 30 seconds, \
             or use another unit: `500ms`, `2m`, `1h`"
        );
        assert_eq!(
            parse_duration("1.5").unwrap_err().help,
            "write `1.5s` for 1.5 seconds, or use another unit: `500ms`, `2m`, `1h`"
        );
    }

    #[test]
    fn duration_errors() {
        let problem = |s: &str| parse_duration(s).unwrap_err().problem;
        assert_eq!(problem(""), "it is empty");
        assert_eq!(problem("0s"), "it must be longer than zero");
        assert_eq!(problem("0ms"), "it must be longer than zero");
        assert_eq!(problem("-5s"), "a duration cannot be negative");
        assert_eq!(problem("8d"), "it is longer than the maximum of 7 days");
        assert_eq!(problem("169h"), "it is longer than the maximum of 7 days");
        assert_eq!(problem("10sec"), "unknown unit `sec`");
        assert_eq!(problem("10 s"), "unknown unit ` s`");
        assert_eq!(problem("1m1h"), "`h` comes after `m`");
        assert_eq!(problem("1s1s"), "`s` comes after `s`");
        assert_eq!(problem("s"), "expected a number before `s`");
        assert_eq!(problem("1.s"), "`1.` is not a number");
        assert_eq!(problem("1..5s"), "`1..5` is not a number");
        assert_eq!(problem("0.0000000001s"), "it is too precise or too large");
        assert_eq!(
            problem("99999999999999999999999999999999999999999h"),
            "it is too precise or too large"
        );
        let e = parse_duration("10sec").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid duration `10sec`: unknown unit `sec`; use `ms`, `s`, `m` (minutes), `h` \
             or `d`, e.g. `30s`, `500ms`, `2m`, `1h30m`, `1.5s`"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1_000"), Ok(1000));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("1K"), Ok(1000));
        assert_eq!(parse_size("1k"), Ok(1000));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("2M"), Ok(2_000_000));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("3GB"), Ok(3_000_000_000));
        assert_eq!(parse_size("1TB"), Ok(1_000_000_000_000));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("16777215TiB"), Ok(16_777_215 << 40));
    }

    #[test]
    fn size_errors() {
        let e = |s: &str| parse_size(s).unwrap_err();
        assert_eq!(e("512Mb").problem, "unknown unit `Mb`");
        assert_eq!(
            e("512Mb").help,
            "a lowercase `b` means bits; write `MB` for bytes, or use `512MiB`, `2GiB`, \
             `100MB`, `65536`"
        );
        assert_eq!(e("1mib").problem, "unknown unit `mib`");
        assert!(e("1mib").help.starts_with("binary units are written `KiB`"));
        assert_eq!(e("1 GIB").problem, "unknown unit `GIB`");
        assert_eq!(e("5PB").problem, "unknown unit `PB`");
        assert_eq!(e("1  MiB").problem, "unknown unit ` MiB`");
        assert_eq!(e("0").problem, "it must be greater than zero");
        assert_eq!(e("0MiB").problem, "it must be greater than zero");
        assert_eq!(e("-1").problem, "a size cannot be negative");
        assert_eq!(e("MiB").problem, "it does not start with a number");
        assert_eq!(e("1_").problem, "`1_` is not a number");
        assert_eq!(e("_1").problem, "`_1` is not a number");
        assert_eq!(e("1__0").problem, "`1__0` is not a number");
        assert_eq!(e("0.1KiB").problem, "it is not a whole number of bytes");
        assert_eq!(e("16777216TiB").problem, "it is too large");
        assert_eq!(e("99999999999999999999999").problem, "it is too large");
        assert_eq!(
            e("lots").to_string(),
            "invalid size `lots`: it does not start with a number; valid sizes look like \
             `512MiB`, `2GiB`, `100MB`, `65536`"
        );
    }

    #[test]
    fn fuel() {
        assert_eq!(parse_fuel("1000"), Ok(1000));
        assert_eq!(parse_fuel("10_000_000"), Ok(10_000_000));
        assert_eq!(parse_fuel("10G"), Ok(10_000_000_000));
        assert_eq!(parse_fuel("500M"), Ok(500_000_000));
        assert_eq!(parse_fuel("2K"), Ok(2_000));
        assert_eq!(parse_fuel("1.5G"), Ok(1_500_000_000));
        let e = |s: &str| parse_fuel(s).unwrap_err();
        assert_eq!(e("10Gi").problem, "unknown suffix `Gi`");
        assert_eq!(e("10T").problem, "unknown suffix `T`");
        assert_eq!(e("0").problem, "it must be greater than zero");
        assert_eq!(e("1.0001K").problem, "it is not a whole number");
        assert_eq!(e("18446744073709551616").problem, "it is too large");
        assert_eq!(parse_fuel("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            e("lots").to_string(),
            "invalid fuel amount `lots`: it does not start with a number; valid fuel amounts \
             look like `10G`, `500M`, `10_000_000`"
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format_duration(Duration::from_micros(3)), "3µs");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(3605)), "1h0m5s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_size(100), "100 B");
        assert_eq!(format_size(1024), "1 KiB");
        assert_eq!(format_size(512 << 20), "512 MiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(1362), "1.33 KiB");
        assert_eq!(format_size(u64::MAX), "16 EiB");
        assert_eq!(format_fuel(10_000_000_000), "10G");
        assert_eq!(format_fuel(500_000_000), "500M");
        assert_eq!(format_fuel(1234), "1234");
    }

    #[test]
    fn formatted_values_parse_back() {
        for d in ["500ms", "1.5s", "2m", "1h30m", "1h0m5s", "7d"] {
            let parsed = parse_duration(d).unwrap();
            assert_eq!(parse_duration(&format_duration(parsed)), Ok(parsed), "{d}");
        }
        for s in ["512 MiB", "1.5 GiB", "100 B", "1 KiB"] {
            let parsed = parse_size(s).unwrap();
            assert_eq!(format_size(parsed), s);
        }
    }
}
