//! The `hermetic.yaml` schema: which keys exist where, their types, and the decoding of
//! the located YAML tree into steps (with defaults applied).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::condition::{self, Condition};
use super::decode::{Decoder, Entry, Keys};
use super::diagnostic::Span;
use super::node::{Node, Value};
use super::paths;
use super::resilience::{self, AdaptiveTimeout, CircuitBreaker, RetryOn};
use super::units;
use super::{DEFAULT_BACKOFF, DEFAULT_STUCK_AFTER, Step, TaskRef};

/// Keys of the top-level map.
pub(crate) const TOP_KEYS: &[&str] = &["name", "defaults", "steps", "chaos"];
/// Keys of `defaults`.
pub(crate) const DEFAULT_KEYS: &[&str] = &[
    "timeout",
    "adaptive_timeout",
    "stuck_after",
    "fuel",
    "memory",
    "retries",
    "retry_on",
    "backoff",
    "priority",
    "env",
    "out_dir",
    "cache_dir",
    "circuit_breaker",
];
/// Keys of a step (plus `name` when `steps` is a list).
pub(crate) const STEP_KEYS: &[&str] = &[
    "task",
    "args",
    "env",
    "params",
    "inputs",
    "outputs",
    "depends_on",
    "timeout",
    "adaptive_timeout",
    "stuck_after",
    "fuel",
    "memory",
    "retries",
    "retry_on",
    "backoff",
    "priority",
    "allow_failure",
    "when",
];
const LIST_STEP_KEYS: &[&str] = &[
    "name",
    "task",
    "args",
    "env",
    "params",
    "inputs",
    "outputs",
    "depends_on",
    "timeout",
    "adaptive_timeout",
    "stuck_after",
    "fuel",
    "memory",
    "retries",
    "retry_on",
    "backoff",
    "priority",
    "allow_failure",
    "when",
];

/// `priority` when neither the step nor `defaults` sets it.
pub const DEFAULT_PRIORITY: u8 = 5;
/// `out_dir` when `defaults` does not set it.
pub const DEFAULT_OUT_DIR: &str = ".hermetic/out";
/// Largest `retries`.
pub const MAX_RETRIES: u32 = 10;

const TASK_EXAMPLE: &str =
    "add `task:` with the name of a crate under `tasks/` or the path of a `.wasm` file";

/// Values from `defaults:`, applied to every step that does not set them.
#[derive(Debug, Default)]
pub(crate) struct Defaults {
    timeout: Option<Duration>,
    fuel: Option<u64>,
    memory: Option<u64>,
    retries: Option<u32>,
    retry_on: Option<RetryOn>,
    backoff: Option<Duration>,
    adaptive_timeout: Option<AdaptiveTimeout>,
    /// `Some(None)` is `off`.
    stuck_after: Option<Option<Duration>>,
    priority: Option<u8>,
    env: BTreeMap<String, String>,
    out_dir: Option<String>,
    cache_dir: Option<String>,
    /// `Some(None)` is `off`.
    circuit_breaker: Option<Option<CircuitBreaker>>,
}

/// A decoded step plus the locations that graph validation needs.
#[derive(Debug)]
pub(crate) struct StepDraft {
    pub step: Step,
    /// Each `depends_on` entry and where it is written.
    pub deps: Vec<(String, Span)>,
    /// Each step named in `when`, and where (inside the condition string).
    pub when_refs: Vec<(String, Span)>,
}

/// The decoded workflow, before graph validation.
#[derive(Debug)]
pub(crate) struct Draft {
    pub name: String,
    pub out_dir: String,
    /// `defaults.cache_dir`, as written.
    pub cache_dir: Option<String>,
    /// `defaults.circuit_breaker`, or its default.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Steps in file order; a step whose name is repeated appears once.
    pub steps: Vec<StepDraft>,
    /// `chaos:`.
    pub chaos: Option<super::chaos::ChaosSection>,
}

fn elsewhere_top(key: &str) -> Option<String> {
    if DEFAULT_KEYS.contains(&key) && STEP_KEYS.contains(&key) {
        Some(format!(
            "`{key}` is set on a step, or for every step under `defaults:`"
        ))
    } else if DEFAULT_KEYS.contains(&key) {
        Some(format!("`{key}` belongs under `defaults:`"))
    } else if STEP_KEYS.contains(&key) {
        Some(format!("`{key}` belongs to a step, under `steps:`"))
    } else {
        None
    }
}

fn elsewhere_defaults(key: &str) -> Option<String> {
    if TOP_KEYS.contains(&key) {
        Some(format!(
            "`{key}` belongs at the top level, not under `defaults:`"
        ))
    } else if STEP_KEYS.contains(&key) {
        Some(format!("`{key}` has no default; set it on each step"))
    } else {
        None
    }
}

fn elsewhere_step(key: &str) -> Option<String> {
    match key {
        "name" => Some(
            "when `steps` is a map, a step's name is its key (`build:`); `name:` is only used \
             when `steps` is a list"
                .to_owned(),
        ),
        "out_dir" | "cache_dir" | "circuit_breaker" => {
            Some(format!("`{key}` can only be set under `defaults:`"))
        }
        "steps" | "defaults" | "chaos" => Some(format!("`{key}` belongs at the top level")),
        _ => None,
    }
}

fn describe_root(root: &Node) -> String {
    match root.value {
        Value::Null => "an empty document".to_owned(),
        _ => root.describe(),
    }
}

/// Decodes the whole document. Problems are recorded in `d`; whatever could be decoded is
/// returned so that later checks still run.
pub(crate) fn decode(d: &mut Decoder<'_>, root: &Node) -> Draft {
    let mut draft = Draft {
        name: String::new(),
        out_dir: DEFAULT_OUT_DIR.to_owned(),
        cache_dir: None,
        circuit_breaker: Some(CircuitBreaker::default()),
        steps: Vec::new(),
        chaos: None,
    };
    let pairs = match &root.value {
        Value::Map(pairs) => pairs,
        Value::Null => {
            let mut diag = d.error(root.span, "the workflow file is empty");
            diag.span = None;
            d.report(diag.with_help(
                "a workflow needs a `name` and at least one step, e.g. \
                 `name: ci` and `steps: {build: {task: rust-build}}`",
            ));
            return draft;
        }
        _ => {
            let diag = d.error(
                root.span,
                format!(
                    "expected a map with `name` and `steps` at the top level, found {}",
                    describe_root(root)
                ),
            );
            d.report(diag);
            return draft;
        }
    };
    let keys = Keys {
        place: "at the top level".to_owned(),
        allowed: TOP_KEYS,
        elsewhere: &elsewhere_top,
    };
    let entries = d.known_entries(pairs, &keys);
    let misspelt = std::mem::take(&mut d.suggested);
    let find = |key: &str| entries.iter().find(|e| e.key == key);

    match find("name") {
        Some(entry) => {
            if let Some(name) = d.string(entry, "a string") {
                if name.trim().is_empty() {
                    let diag = d
                        .error(entry.value_span(), "`name` is empty")
                        .with_help("give the workflow a name, e.g. `name: ci`");
                    d.report(diag);
                }
                draft.name = name;
            }
        }
        None if misspelt.iter().any(|k| k == "name") => {}
        None => {
            let diag = d
                .error(root.span, "missing `name` at the top level")
                .with_help("add a name for the workflow, e.g. `name: ci`");
            d.report(diag);
        }
    }

    let defaults = match find("defaults") {
        Some(entry) => decode_defaults(d, entry),
        None => Defaults::default(),
    };
    draft.cache_dir.clone_from(&defaults.cache_dir);
    if let Some(breaker) = defaults.circuit_breaker {
        draft.circuit_breaker = breaker;
    }
    if let Some(out_dir) = &defaults.out_dir {
        draft.out_dir.clone_from(out_dir);
    }

    match find("steps") {
        Some(entry) => draft.steps = decode_steps(d, entry, &defaults),
        None if misspelt.iter().any(|k| k == "steps") => {}
        None => {
            let diag = d
                .error(root.span, "missing `steps` at the top level")
                .with_help("add the steps to run, e.g. `steps: {build: {task: rust-build}}`");
            d.report(diag);
        }
    }
    if let Some(entry) = find("chaos") {
        let names: Vec<&str> = draft.steps.iter().map(|s| s.step.name.as_str()).collect();
        draft.chaos = Some(super::chaos::decode(d, entry, &names));
    }
    draft
}

fn decode_defaults(d: &mut Decoder<'_>, entry: &Entry<'_>) -> Defaults {
    let mut defaults = Defaults::default();
    let Some(pairs) = d.map(entry) else {
        return defaults;
    };
    let keys = Keys {
        place: "in `defaults`".to_owned(),
        allowed: DEFAULT_KEYS,
        elsewhere: &elsewhere_defaults,
    };
    for e in d.known_entries(pairs, &keys) {
        match e.key {
            "timeout" => defaults.timeout = d.unit(&e, "a duration", units::parse_duration),
            "fuel" => defaults.fuel = d.unit(&e, "a fuel amount", units::parse_fuel),
            "memory" => defaults.memory = d.unit(&e, "a size", units::parse_size),
            "retries" => defaults.retries = retries(d, &e),
            "retry_on" => defaults.retry_on = resilience::retry_on(d, &e),
            "backoff" => defaults.backoff = resilience::backoff(d, &e),
            "adaptive_timeout" => {
                defaults.adaptive_timeout = resilience::adaptive_timeout(d, &e).flatten();
            }
            "stuck_after" => defaults.stuck_after = resilience::stuck_after(d, &e),
            "circuit_breaker" => defaults.circuit_breaker = resilience::circuit_breaker(d, &e),
            "priority" => defaults.priority = priority(d, &e),
            "env" => defaults.env = env(d, &e),
            "out_dir" => {
                if let Some(dir) = d.string(&e, "a directory path") {
                    match paths::check_out_dir(&dir) {
                        Ok(()) => defaults.out_dir = Some(dir),
                        Err(p) => d.problem(e.value_span(), p),
                    }
                }
            }
            "cache_dir" => {
                if let Some(dir) = d.string(&e, "a directory path") {
                    if dir.is_empty() || dir.contains('\0') {
                        let problem = paths::Problem {
                            message: "`cache_dir` must be a non-empty path".to_owned(),
                            help: Some(
                                "a directory relative to the workflow file, or an absolute one; \
                                 `--cache-dir` and HERMETIC_CACHE_DIR override it"
                                    .to_owned(),
                            ),
                        };
                        d.problem(e.value_span(), problem);
                    } else {
                        defaults.cache_dir = Some(dir);
                    }
                }
            }
            _ => unreachable!("key filtered by known_entries"),
        }
    }
    defaults
}

fn retries(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<u32> {
    d.integer(e, 0..=i128::from(MAX_RETRIES)).map(|r| r as u32)
}

fn priority(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<u8> {
    d.integer(e, 1..=10).map(|p| p as u8)
}

fn env(d: &mut Decoder<'_>, e: &Entry<'_>) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let Value::Map(pairs) = &e.value.value else {
        if !matches!(e.value.value, Value::Null) {
            d.type_error(e, "a map of environment variables");
            if let Value::Seq(_) = e.value.value
                && let Some(last) = d.diagnostics.last_mut()
            {
                last.help = Some(
                    "write one `NAME: value` line per variable under `env:`, e.g. \
                     `env: {RUST_LOG: debug}`"
                        .to_owned(),
                );
            }
        }
        return vars;
    };
    let duplicate = |key: &str| format!("duplicate environment variable `{key}`");
    for var in d.unique_entries(pairs, &duplicate) {
        if let Err(p) = paths::check_env_name(var.key) {
            d.problem(var.key_node.span, p);
            continue;
        }
        match var.value.scalar_text() {
            Some(value) if value.contains('\0') => {
                let diag = d.error(
                    var.value.span,
                    format!(
                        "environment variable `{}` contains a NUL character",
                        var.key
                    ),
                );
                d.report(diag);
            }
            Some(value) => {
                vars.insert(var.key.to_owned(), value);
            }
            None if matches!(var.value.value, Value::Null) => {
                let diag = d
                    .error(
                        var.value_span(),
                        format!("environment variable `{}` has no value", var.key),
                    )
                    .with_help(format!("write `{}: \"\"` for an empty value", var.key));
                d.report(diag);
            }
            None => d.type_error(&var, "a string"),
        }
    }
    vars
}

fn decode_steps(d: &mut Decoder<'_>, entry: &Entry<'_>, defaults: &Defaults) -> Vec<StepDraft> {
    let mut steps = Vec::new();
    match &entry.value.value {
        Value::Map(pairs) => {
            steps.reserve_exact(pairs.len());
            let duplicate = |key: &str| format!("duplicate step name `{key}`");
            for step in d.unique_entries(pairs, &duplicate) {
                if let Err(p) = paths::check_step_name(step.key) {
                    d.problem(step.key_node.span, p);
                }
                let place = format!("in step `{}`", step.key);
                let body = match &step.value.value {
                    Value::Map(body) => body.as_slice(),
                    Value::Null => {
                        let diag = d
                            .error(step.key_node.span, format!("step `{}` is empty", step.key))
                            .with_help(TASK_EXAMPLE);
                        d.report(diag);
                        continue;
                    }
                    _ => {
                        d.type_error(&step, "a map of step settings");
                        continue;
                    }
                };
                let keys = Keys {
                    place,
                    allowed: STEP_KEYS,
                    elsewhere: &elsewhere_step,
                };
                let fields = d.known_entries(body, &keys);
                let misspelt_task = d.suggested.iter().any(|k| k == "task");
                steps.push(decode_step(
                    d,
                    step.key.to_owned(),
                    step.key_node.span,
                    &fields,
                    defaults,
                    misspelt_task,
                ));
            }
        }
        Value::Seq(items) => {
            let mut seen: HashMap<String, Span> = HashMap::new();
            for (index, item) in items.iter().enumerate() {
                if let Some(step) = decode_list_step(d, index, item, defaults, &mut seen) {
                    steps.push(step);
                }
            }
        }
        Value::Null => {}
        _ => {
            d.type_error(entry, "a map of steps");
            return steps;
        }
    }
    let empty = match &entry.value.value {
        Value::Map(pairs) => pairs.is_empty(),
        Value::Seq(items) => items.is_empty(),
        _ => true,
    };
    if empty {
        let diag = d
            .error(entry.value_span(), "`steps` is empty")
            .with_help("add at least one step, e.g. `steps: {build: {task: rust-build}}`");
        d.report(diag);
    }
    steps
}

fn decode_list_step(
    d: &mut Decoder<'_>,
    index: usize,
    item: &Node,
    defaults: &Defaults,
    seen: &mut HashMap<String, Span>,
) -> Option<StepDraft> {
    let ordinal = index + 1;
    let Value::Map(pairs) = &item.value else {
        let diag = d
            .error(
                item.span,
                format!(
                    "expected a map for step #{ordinal}, found {}",
                    item.describe()
                ),
            )
            .with_help("each item of `steps` is a map like `{name: build, task: rust-build}`");
        d.report(diag);
        return None;
    };
    // The name is needed to word the other messages, so find it first.
    let named = pairs.iter().find_map(|(k, v)| {
        (k.value == Value::Str("name".to_owned()))
            .then(|| v.scalar_text().map(|n| (n, v.span)))
            .flatten()
    });
    let place = match &named {
        Some((name, _)) => format!("in step `{name}`"),
        None => format!("in step #{ordinal}"),
    };
    let keys = Keys {
        place,
        allowed: LIST_STEP_KEYS,
        elsewhere: &|key| (key != "name").then(|| elsewhere_step(key)).flatten(),
    };
    let fields = d.known_entries(pairs, &keys);
    let misspelt_task = d.suggested.iter().any(|k| k == "task");
    let name_entry = fields.iter().find(|e| e.key == "name");
    let (name, span) = match (name_entry, named) {
        (Some(_), Some((name, span))) => (name, span),
        (Some(e), None) => {
            d.type_error(e, "a step name");
            return None;
        }
        (None, _) if was_suggested(&d.suggested, "name") => return None,
        (None, _) => {
            let diag = d
                .error(item.span, format!("step #{ordinal} has no `name`"))
                .with_help(
                    "when `steps` is a list, every step needs `name:`; or write `steps` as a \
                     map from step name to step",
                );
            d.report(diag);
            return None;
        }
    };
    if let Err(p) = paths::check_step_name(&name) {
        d.problem(span, p);
    }
    if let Some(&first) = seen.get(&name) {
        let diag = d
            .error(span, format!("duplicate step name `{name}`"))
            .with_note(Some(first), format!("`{name}` is first defined here"));
        d.report(diag);
        return None;
    }
    seen.insert(name.clone(), span);
    let fields: Vec<Entry<'_>> = fields.into_iter().filter(|e| e.key != "name").collect();
    Some(decode_step(d, name, span, &fields, defaults, misspelt_task))
}

fn was_suggested(suggested: &[String], key: &str) -> bool {
    suggested.iter().any(|k| k == key)
}

fn decode_step(
    d: &mut Decoder<'_>,
    name: String,
    span: Span,
    fields: &[Entry<'_>],
    defaults: &Defaults,
    misspelt_task: bool,
) -> StepDraft {
    let mut step = Step {
        name,
        task: TaskRef::Crate(String::new()),
        args: Vec::new(),
        env: defaults.env.clone(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        depends_on: Vec::new(),
        timeout: defaults.timeout,
        fuel: defaults.fuel,
        memory: defaults.memory,
        retries: defaults.retries.unwrap_or(0),
        retry_on: defaults.retry_on.clone().unwrap_or_default(),
        backoff: defaults.backoff.unwrap_or(DEFAULT_BACKOFF),
        adaptive_timeout: defaults.adaptive_timeout,
        stuck_after: defaults.stuck_after.unwrap_or(Some(DEFAULT_STUCK_AFTER)),
        priority: defaults.priority.unwrap_or(DEFAULT_PRIORITY),
        allow_failure: false,
        when: Condition::Success,
        span,
        task_span: span,
        output_spans: Vec::new(),
    };
    let mut deps = Vec::new();
    let mut when_refs = Vec::new();
    let mut has_task = false;
    let mut retries_valid = true;
    let mut retry_on_key = None;
    let mut params = None;
    let mut params_key = None;
    let mut env_key = None;

    for e in fields {
        match e.key {
            "task" => {
                has_task = true;
                if let Some(text) = d.string(e, "a task name or `.wasm` path") {
                    step.task_span = e.value_span();
                    match paths::parse_task(&text) {
                        Ok(task) => step.task = task,
                        Err(p) => d.problem(e.value_span(), p),
                    }
                }
            }
            "args" => {
                for (arg, node) in d.string_list(e, false) {
                    if arg.contains('\0') {
                        let diag = d.error(node.span, "an argument contains a NUL character");
                        d.report(diag);
                    } else {
                        step.args.push(arg);
                    }
                }
            }
            "env" => {
                env_key = Some(e.key_node.span);
                step.env.extend(env(d, e));
            }
            "params" => {
                params_key = Some(e.key_node.span);
                params = super::params::decode(d, e);
            }
            "inputs" => {
                for (glob, node) in d.string_list(e, false) {
                    match paths::check_input(&glob) {
                        Ok(()) => step.inputs.push(glob),
                        Err(p) => d.problem(node.span, p),
                    }
                }
            }
            "outputs" => outputs(d, e, &mut step),
            "depends_on" => {
                for (dep, node) in d.string_list(e, true) {
                    step.depends_on.push(dep.clone());
                    deps.push((dep, node.span));
                }
            }
            "timeout" => step.timeout = d.unit(e, "a duration", units::parse_duration),
            "fuel" => step.fuel = d.unit(e, "a fuel amount", units::parse_fuel),
            "memory" => step.memory = d.unit(e, "a size", units::parse_size),
            "retries" => match retries(d, e) {
                Some(retries) => step.retries = retries,
                None => retries_valid = false,
            },
            "retry_on" => {
                if let Some(retry_on) = resilience::retry_on(d, e) {
                    step.retry_on = retry_on;
                    retry_on_key = Some(e.key_node.span);
                }
            }
            "backoff" => step.backoff = resilience::backoff(d, e).unwrap_or(step.backoff),
            "adaptive_timeout" => {
                if let Some(adaptive) = resilience::adaptive_timeout(d, e) {
                    step.adaptive_timeout = adaptive;
                }
            }
            "stuck_after" => {
                if let Some(stuck_after) = resilience::stuck_after(d, e) {
                    step.stuck_after = stuck_after;
                }
            }
            "priority" => step.priority = priority(d, e).unwrap_or(step.priority),
            "allow_failure" => step.allow_failure = d.boolean(e).unwrap_or(false),
            "when" => {
                if let Some((condition, refs)) = when(d, e) {
                    step.when = condition;
                    when_refs = refs;
                }
            }
            _ => unreachable!("key filtered by known_entries"),
        }
    }
    // A misspelt `task` has already been reported, with a suggestion.
    if !has_task && !misspelt_task {
        let diag = d
            .error(span, format!("step `{}` has no `task`", step.name))
            .with_help(TASK_EXAMPLE);
        d.report(diag);
    }
    if let Some(key) = retry_on_key
        && retries_valid
        && step.retries == 0
    {
        let diag = d
            .warning(
                key,
                format!(
                    "`retry_on` has no effect: step `{}` is never retried",
                    step.name
                ),
            )
            .with_help("set `retries:` on the step, or for every step under `defaults:`");
        d.report(diag);
    }
    if let (Some(json), Some(key)) = (params, params_key) {
        use super::params::PARAMS_ENV;
        if step.env.contains_key(PARAMS_ENV) {
            let diag = d
                .error(
                    env_key.unwrap_or(key),
                    format!("`env` sets `{PARAMS_ENV}`, which carries the step's `params`"),
                )
                .with_help(format!(
                    "remove `{PARAMS_ENV}` from `env`: `params:` sets it from its map"
                ));
            d.report(diag);
        } else {
            step.env.insert(PARAMS_ENV.to_string(), json.to_string());
        }
    }
    StepDraft {
        step,
        deps,
        when_refs,
    }
}

fn outputs(d: &mut Decoder<'_>, e: &Entry<'_>, step: &mut Step) {
    for (path, node) in d.string_list(e, false) {
        if let Err(p) = paths::check_output(&path) {
            d.problem(node.span, p);
            continue;
        }
        if let Some(i) = step.outputs.iter().position(|o| *o == path) {
            let diag = d
                .error(node.span, format!("output `{path}` is declared twice"))
                .with_note(Some(step.output_spans[i]), "first declared here");
            d.report(diag);
            continue;
        }
        step.outputs.push(path);
        step.output_spans.push(node.span);
    }
}

fn when(d: &mut Decoder<'_>, e: &Entry<'_>) -> Option<(Condition, Vec<(String, Span)>)> {
    let Value::Str(text) = &e.value.value else {
        d.type_error(e, "a condition such as `success` or `build.failed`");
        return None;
    };
    match condition::parse_located(text) {
        Ok((condition, refs)) => {
            let refs = refs
                .into_iter()
                .map(|r| {
                    let span = e.value.sub_span(r.offset, r.len);
                    (r.name, span)
                })
                .collect();
            Some((condition, refs))
        }
        Err(err) => {
            let span = e.value.sub_span(err.offset, err.len);
            let mut diag = d.error(span, format!("invalid `when` condition: {}", err.message));
            diag.help = err.help;
            d.report(diag);
            None
        }
    }
}
