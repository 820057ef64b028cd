//! Checks across steps: `depends_on` names, self-dependencies, repeated dependencies,
//! `when` references and dependency cycles.

use std::collections::{HashMap, HashSet, VecDeque};

use super::decode::Decoder;
use super::schema::StepDraft;
use super::suggest::{did_you_mean, list};

/// At most this many step names are listed in a "the steps are …" help.
const MAX_LISTED: usize = 10;

/// Runs every cross-step check, recording problems in `d`.
pub(crate) fn validate(d: &mut Decoder<'_>, steps: &[StepDraft]) {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.step.name.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, draft) in steps.iter().enumerate() {
        check_deps(d, draft, steps, &index, &mut edges[i]);
        check_when(d, draft, steps, &index);
    }
    check_cycles(d, steps, &edges);
}

fn other_names<'a>(steps: &'a [StepDraft], except: &str) -> Vec<&'a str> {
    steps
        .iter()
        .map(|s| s.step.name.as_str())
        .filter(|n| *n != except)
        .collect()
}

fn check_deps(
    d: &mut Decoder<'_>,
    draft: &StepDraft,
    steps: &[StepDraft],
    index: &HashMap<&str, usize>,
    edges: &mut Vec<usize>,
) {
    let name = draft.step.name.as_str();
    for (i, (dep, span)) in draft.deps.iter().enumerate() {
        if let Some((_, first)) = draft.deps[..i].iter().find(|(other, _)| other == dep) {
            let diag = d
                .error(
                    *span,
                    format!("`{dep}` is listed twice in `depends_on` of step `{name}`"),
                )
                .with_note(Some(*first), "first listed here");
            d.report(diag);
            continue;
        }
        if dep == name {
            let diag = d
                .error(*span, format!("step `{name}` depends on itself"))
                .with_help(format!("remove `{name}` from its `depends_on`"));
            d.report(diag);
            continue;
        }
        match index.get(dep.as_str()) {
            Some(&target) => edges.push(target),
            None => {
                let others = other_names(steps, name);
                let help = match did_you_mean(dep, others.iter().copied()) {
                    Some(guess) => Some(format!("did you mean `{guess}`?")),
                    None if others.is_empty() => Some("there are no other steps".to_owned()),
                    None if others.len() <= MAX_LISTED => {
                        Some(format!("the steps are {}", list(&others, "and")))
                    }
                    None => None,
                };
                let mut diag = d.error(
                    *span,
                    format!("unknown step `{dep}` in `depends_on` of step `{name}`"),
                );
                diag.help = help;
                d.report(diag);
            }
        }
    }
}

fn check_when(
    d: &mut Decoder<'_>,
    draft: &StepDraft,
    steps: &[StepDraft],
    index: &HashMap<&str, usize>,
) {
    let name = draft.step.name.as_str();
    let mut seen: Vec<&str> = Vec::new();
    for (referenced, span) in &draft.when_refs {
        if seen.contains(&referenced.as_str()) {
            continue;
        }
        seen.push(referenced);
        if draft.deps.iter().any(|(dep, _)| dep == referenced) {
            continue;
        }
        let diag = if referenced == name {
            d.error(
                *span,
                format!("`when` of step `{name}` refers to `{name}` itself"),
            )
            .with_help("a condition can only test the outcome of the step's dependencies")
        } else if index.contains_key(referenced.as_str()) {
            d.error(
                *span,
                format!("`when` refers to `{referenced}`, which `{name}` does not depend on"),
            )
            .with_help(format!("add `{referenced}` to `depends_on`"))
        } else {
            let mut deps: Vec<&str> = Vec::new();
            for (dep, _) in &draft.deps {
                if dep != name && index.contains_key(dep.as_str()) && !deps.contains(&dep.as_str())
                {
                    deps.push(dep);
                }
            }
            let others = other_names(steps, name);
            let guess = did_you_mean(referenced, deps.iter().copied())
                .or_else(|| did_you_mean(referenced, others.iter().copied()));
            let diag = d.error(
                *span,
                format!("`when` refers to `{referenced}`, which is not a step"),
            );
            match guess {
                Some(guess) => diag.with_help(format!("did you mean `{guess}`?")),
                None if deps.is_empty() => diag.with_help(format!(
                    "a condition can only test the step's dependencies, and `{name}` has none"
                )),
                None => diag.with_help(format!(
                    "the dependencies of `{name}` are {}",
                    list(&deps, "and")
                )),
            }
        };
        d.report(diag);
    }
}

/// Strongly connected components (Tarjan's algorithm, iterative so that long chains of
/// steps cannot overflow the stack). Components come out in no particular order.
fn components(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut order: Vec<Option<usize>> = vec![None; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if order[root].is_some() {
            continue;
        }
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        order[root] = Some(next);
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&(v, edge)) = calls.last() {
            if let Some(&w) = edges[v].get(edge) {
                if let Some(call) = calls.last_mut() {
                    call.1 += 1;
                }
                match order[w] {
                    None => {
                        order[w] = Some(next);
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        calls.push((w, 0));
                    }
                    Some(o) if on_stack[w] => low[v] = low[v].min(o),
                    Some(_) => {}
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u] = low[u].min(low[v]);
            }
            if Some(low[v]) == order[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

/// The shortest path from `start` back to itself, staying inside `component`, following
/// edges in the order the steps list their dependencies.
fn shortest_cycle(edges: &[Vec<usize>], component: &[usize], start: usize) -> Vec<usize> {
    let component: HashSet<usize> = component.iter().copied().collect();
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &edges[v] {
            if !component.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                let mut at = v;
                while at != start {
                    at = parent[&at];
                    path.push(at);
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if w != start && !parent.contains_key(&w) {
                parent.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start, start]
}

fn check_cycles(d: &mut Decoder<'_>, steps: &[StepDraft], edges: &[Vec<usize>]) {
    let mut cycles: Vec<Vec<usize>> = components(edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let start = c.iter().copied().min().unwrap_or_default();
            shortest_cycle(edges, &c, start)
        })
        .collect();
    cycles.sort();
    for cycle in cycles {
        let names: Vec<&str> = cycle.iter().map(|&i| steps[i].step.name.as_str()).collect();
        let first = &steps[cycle[0]].step;
        let diag = d
            .error(
                first.span,
                format!("dependency cycle: {}", names.join(" → ")),
            )
            .with_help(
                "steps cannot depend on themselves, directly or through other steps; remove \
                 one of the `depends_on` entries in the cycle",
            );
        d.report(diag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_find_every_cycle() {
        // 0 → 1 → 2 → 0, 3 → 4 → 3, 5 alone, 6 → 0.
        let edges = vec![vec![1], vec![2], vec![0], vec![4], vec![3], vec![], vec![0]];
        let mut found: Vec<Vec<usize>> = components(&edges)
            .into_iter()
            .map(|mut c| {
                c.sort_unstable();
                c
            })
            .collect();
        found.sort();
        assert_eq!(found, [vec![0, 1, 2], vec![3, 4], vec![5], vec![6]]);
        assert_eq!(shortest_cycle(&edges, &[0, 1, 2], 0), [0, 1, 2, 0]);
    }

    #[test]
    fn shortest_cycle_prefers_the_short_way_round() {
        // 0 → 1 → 2 → 3 → 0 and 0 → 3.
        let edges = vec![vec![1, 3], vec![2], vec![3], vec![0]];
        assert_eq!(shortest_cycle(&edges, &[0, 1, 2, 3], 0), [0, 3, 0]);
    }

    #[test]
    fn long_chains_do_not_overflow() {
        let n = 200_000;
        let mut edges: Vec<Vec<usize>> = (0..n).map(|i| vec![i + 1]).collect();
        edges[n - 1] = vec![0];
        let found = components(&edges);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].len(), n);
    }
}
