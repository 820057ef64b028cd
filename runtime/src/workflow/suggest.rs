//! "Did you mean …?" suggestions for misspelt keys, step names and condition words, and
//! lists of names for messages.

/// Lowercase without `_` and `-`, so that `dependsOn`, `depends-on` and `dependson`
/// all look like `depends_on`.
fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The candidate closest to `input`, if one is close enough to be a likely typo.
///
/// Close enough means: equal after ignoring case, `_` and `-`; or within an edit distance
/// of one third of the input's length (at least 1, transpositions count as one edit).
/// Ties go to the alphabetically first candidate, so that the answer does not depend on
/// the order of `candidates`.
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let wanted = normalise(input);
    let limit = (input.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == input {
            continue;
        }
        let distance = if normalise(candidate) == wanted {
            0
        } else {
            strsim::damerau_levenshtein(&input.to_lowercase(), &candidate.to_lowercase())
        };
        if distance <= limit
            && best.is_none_or(|(d, c)| distance < d || (distance == d && candidate < c))
        {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `` `a`, `b` and `c` `` (or `` `a` or `b` `` with `conjunction = "or"`).
pub fn list<S: AsRef<str>>(items: &[S], conjunction: &str) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{}`", s.as_ref())).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 6] = ["task", "args", "env", "inputs", "outputs", "depends_on"];

    #[test]
    fn finds_typos() {
        assert_eq!(did_you_mean("depend_on", KEYS), Some("depends_on"));
        assert_eq!(did_you_mean("dependson", KEYS), Some("depends_on"));
        assert_eq!(did_you_mean("dependsOn", KEYS), Some("depends_on"));
        assert_eq!(did_you_mean("depends-on", KEYS), Some("depends_on"));
        assert_eq!(did_you_mean("input", KEYS), Some("inputs"));
        assert_eq!(did_you_mean("taks", KEYS), Some("task"));
        assert_eq!(did_you_mean("Task", KEYS), Some("task"));
        assert_eq!(did_you_mean("enviroment", KEYS), None);
        assert_eq!(did_you_mean("xyz", KEYS), None);
        assert_eq!(did_you_mean("task", KEYS), None);
    }

    #[test]
    fn lists() {
        assert_eq!(list::<&str>(&[], "and"), "");
        assert_eq!(list(&["a"], "and"), "`a`");
        assert_eq!(list(&["a", "b"], "or"), "`a` or `b`");
        assert_eq!(list(&["a", "b", "c"], "and"), "`a`, `b` and `c`");
    }
}
