//! From a validated [`Workflow`] to a [`Plan`]: which steps run, which module each runs, which
//! files each sees, and in what order they may go.

mod inputs;
pub mod key;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hermetic_cache::Digest;

use crate::sandbox::{Limits, Program, Sandbox, UnknownImports};
use crate::taskbuild::{BuiltTask, TaskBuilder};
use crate::workflow::{Diagnostic, Diagnostics, Step, TaskRef, Workflow};

pub use inputs::{hash_inputs, resolve_inputs};
use key::KeyFields;
pub use key::{KEY_FORMAT, KeyComponents};

/// One step, ready to schedule.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// Index into [`Plan::steps`].
    pub index: usize,
    /// Index into `workflow.steps`, the step's definition (they differ with `--step`).
    pub workflow_index: usize,
    /// The step's name.
    pub name: String,
    /// The loaded program, shared by every step that runs it.
    pub program: Arc<Program>,
    /// The module file it was loaded from (remote execution sends its bytes).
    pub module: Arc<Path>,
    /// Indices of the steps this one depends on.
    pub deps: Vec<usize>,
    /// Indices of the steps that depend on this one.
    pub dependents: Vec<usize>,
    /// Declared inputs, `None` for a step without any: boxed, because most steps have none,
    /// and 80 bytes inline in each of 10,000 planned steps were 195 more pages touched for
    /// the first time before the first step could start. Read them with
    /// [`PlannedStep::input_paths`], [`PlannedStep::input_files`] and
    /// [`PlannedStep::inputs_tree`].
    pub inputs: Option<Box<StepInputs>>,
    /// Effective limits (step, then `defaults`, then built-in defaults).
    pub limits: Limits,
    /// Seed for the guest's randomness, derived from the workflow and step names: read it
    /// with [`Plan::seed`]. Hashed the first time it is needed (for the step's action key, on
    /// the worker that takes it) rather than while planning, where it was 1 ms of every
    /// 10,000 steps before the first could start.
    seed: OnceLock<[u8; 32]>,
    /// Length of the longest chain of dependents after this step, for ordering ready steps.
    pub critical_path: u32,
    /// The step's scheduling priority (its definition's), kept here with `critical_path` so
    /// that ordering a ready step reads this struct only.
    pub priority: u8,
}

// A plan holds one `PlannedStep` per step, all written before the first step can start, and
// every fresh page of them costs a page fault (about 1.8 µs on the virtual machines this runs
// on): a field that makes it larger should earn its bytes. Session 25 boxed the inputs, 296 →
// 224 bytes.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<PlannedStep>() <= 224);

/// A step's declared inputs, as planning found and hashed them.
#[derive(Debug, Clone)]
pub struct StepInputs {
    /// `(path relative to the workflow directory, host file)`, sorted.
    pub paths: Vec<(String, PathBuf)>,
    /// The files' relative paths, digests and sizes as hashed when planning, in the order of
    /// `paths`. Staging checks each copy against its digest, so a file edited during the run
    /// can never be cached under the key of its old content.
    pub files: Vec<hermetic_cache::FileEntry>,
    /// The Merkle root of `files`.
    pub tree: Digest,
}

impl PlannedStep {
    /// The declared inputs: `(path relative to the workflow directory, host file)`, sorted.
    pub fn input_paths(&self) -> &[(String, PathBuf)] {
        self.inputs.as_ref().map_or(&[], |i| &i.paths)
    }

    /// The inputs as hashed when planning, in the order of [`PlannedStep::input_paths`].
    pub fn input_files(&self) -> &[hermetic_cache::FileEntry] {
        self.inputs.as_ref().map_or(&[], |i| &i.files)
    }

    /// The Merkle root of [`PlannedStep::input_files`] (the empty tree's for a step without
    /// inputs).
    pub fn inputs_tree(&self) -> Digest {
        static EMPTY: OnceLock<Digest> = OnceLock::new();
        match &self.inputs {
            Some(i) => i.tree,
            None => *EMPTY.get_or_init(|| hermetic_cache::tree_digest(&[])),
        }
    }
}

/// A workflow, resolved and ready to run.
#[derive(Debug)]
pub struct Plan {
    /// The workflow.
    pub workflow: Workflow,
    /// `.hermetic/` beside the workflow file.
    pub state_dir: PathBuf,
    /// Where outputs are published: `<out_root>/<step>/`.
    pub out_root: PathBuf,
    /// The steps, in the workflow's order.
    pub steps: Vec<PlannedStep>,
    /// The crate tasks the steps run, by name, as built (or reused) for this plan.
    pub tasks: BTreeMap<String, BuiltTask>,
    /// How unknown imports were linked: part of every action key.
    pub unknown_imports: UnknownImports,
}

/// Options of planning.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only these steps (and their dependencies); all when empty.
    pub only: Vec<String>,
    /// Overrides the workflow's `defaults.out_dir`.
    pub out_dir: Option<PathBuf>,
    /// What to do with unknown imports.
    pub unknown_imports: UnknownImports,
    /// Load the modules into a sandbox that can inject faults at the WASI boundary
    /// (`hermetic chaos`; see [`Sandbox::with_fault_hooks`]).
    pub fault_hooks: bool,
}

impl Plan {
    /// Resolves modules, inputs and the graph. Problems come back as located diagnostics.
    pub fn new(
        workflow: Workflow,
        sandbox: &Sandbox,
        options: &PlanOptions,
    ) -> Result<Plan, Diagnostics> {
        let mut diags = Diagnostics::new();
        let wf = &workflow;
        let state_dir = wf.dir.join(".hermetic");
        let out_root = match &options.out_dir {
            Some(dir) => dir.clone(),
            None => wf.dir.join(&wf.out_dir),
        };
        // Hashed, not sorted: it is only looked up, and a sorted map of 10,000 names cost the
        // run's start 2 ms (84.2 → 82.1 and 85.8 → 84.2 ms, with `select`'s flags).
        let mut index = Index::with_capacity_and_hasher(wf.steps.len(), Default::default());
        index.extend(
            wf.steps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.as_str(), i)),
        );

        let selected = select(wf, &index, &options.only, &mut diags);
        let mut inputs = resolve_inputs(wf, &mut diags);

        // Each step's program, in order, since loading one may build or compile it; then the
        // rest of each step, on every core for a large workflow (see `crate::par`).
        let mut programs = Programs::new(&state_dir);
        let mut loaded = Vec::with_capacity(wf.steps.len());
        for (i, step) in wf.steps.iter().enumerate() {
            if !selected[i] {
                continue;
            }
            if let Some((path, program)) = programs.load(wf, step, sandbox, options, &mut diags) {
                loaded.push((i, path, program, inputs.remove(&i).unwrap_or_default()));
            }
        }
        let mut steps = crate::par::map_vec(loaded, |(i, module, program, inputs)| {
            let step = &wf.steps[i];
            PlannedStep {
                index: i,
                workflow_index: i,
                name: step.name.clone(),
                program,
                module,
                deps: step
                    .depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect(),
                dependents: Vec::new(),
                inputs: (!inputs.is_empty()).then(|| {
                    Box::new(StepInputs {
                        paths: inputs,
                        files: Vec::new(),
                        tree: hermetic_cache::tree_digest(&[]),
                    })
                }),
                limits: Limits::default().overridden(step.timeout, step.fuel, step.memory),
                seed: OnceLock::new(),
                critical_path: 0,
                priority: step.priority,
            }
        });
        if diags.has_errors() {
            diags.sort();
            return Err(diags);
        }
        hash_inputs(wf, &mut steps, &mut diags);
        if diags.has_errors() {
            diags.sort();
            return Err(diags);
        }

        // Re-index: `steps` holds only the selected steps.
        let mut position: Vec<Option<usize>> = vec![None; wf.steps.len()];
        for (pos, s) in steps.iter().enumerate() {
            position[s.index] = Some(pos);
        }
        for (pos, s) in steps.iter_mut().enumerate() {
            s.deps.retain_mut(|d| match position[*d] {
                Some(p) => {
                    *d = p;
                    true
                }
                None => false,
            });
            s.index = pos;
        }
        for i in 0..steps.len() {
            for j in 0..steps[i].deps.len() {
                let d = steps[i].deps[j];
                steps[d].dependents.push(i);
            }
        }
        compute_critical_paths(&mut steps);
        let tasks = programs
            .built
            .into_iter()
            .filter_map(|(name, b)| Some((name, b.ok()?)))
            .collect();
        Ok(Plan {
            workflow,
            state_dir,
            out_root,
            steps,
            tasks,
            unknown_imports: options.unknown_imports,
        })
    }

    /// The empty read-only directory mounted as `/in` or `/deps` for steps with nothing there,
    /// inside the per-run scratch directory `.hermetic/tmp/`.
    pub fn empty_dir(&self) -> PathBuf {
        self.state_dir.join("tmp").join(crate::pool::scratch::EMPTY)
    }

    /// Creates the per-run directories every attempt relies on ([`Plan::empty_dir`] and its
    /// parent). `Executor::run` calls it; call it before using `pool::run_attempt` directly.
    pub fn prepare_dirs(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.empty_dir())
    }

    /// `step`'s action key, given the Merkle roots of its dependencies' outputs (`dep_trees`,
    /// in the order of [`PlannedStep::deps`]) and the sandbox's engine digest: the key of
    /// [`Plan::key_components`], hashed from the plan without building them.
    pub fn action_key(&self, step: &PlannedStep, engine: &str, dep_trees: &[Digest]) -> Digest {
        let mut deps = self.named_deps(step, dep_trees);
        deps.sort_unstable_by_key(|&(name, _)| name);
        let args = &self.step_def(step).args;
        self.key_fields(step, engine)
            .key(Some(&step.name), args, deps.into_iter())
    }

    /// The components of `step`'s action key, given what [`Plan::action_key`] is.
    pub fn key_components(
        &self,
        step: &PlannedStep,
        engine: &str,
        dep_trees: &[Digest],
    ) -> KeyComponents {
        let def = self.step_def(step);
        let fields = self.key_fields(step, engine);
        KeyComponents {
            format: fields.format,
            wasmtime: fields.wasmtime.to_owned(),
            engine: fields.engine.to_owned(),
            module: fields.module,
            unknown_imports: fields.unknown_imports.to_owned(),
            args: self.argv(step),
            env: def.env.clone(),
            inputs: fields.inputs,
            deps: self
                .named_deps(step, dep_trees)
                .into_iter()
                .map(|(name, tree)| (name.to_owned(), tree))
                .collect(),
            outputs: def.outputs.clone(),
            clock_epoch_secs: fields.clock_epoch_secs,
            seed: fields.seed,
            input_files: step.input_files().to_vec(),
        }
    }

    /// The fields of `step`'s key that do not depend on the run.
    fn key_fields<'a>(&'a self, step: &PlannedStep, engine: &'a str) -> KeyFields<'a> {
        let def = self.step_def(step);
        KeyFields {
            format: KEY_FORMAT,
            wasmtime: crate::sandbox::engine::WASMTIME_VERSION,
            engine,
            module: step.program.digest,
            unknown_imports: match self.unknown_imports {
                UnknownImports::Reject => "reject",
                UnknownImports::Trap => "trap",
            },
            env: &def.env,
            inputs: step.inputs_tree(),
            outputs: &def.outputs,
            clock_epoch_secs: crate::sandbox::clock::DEFAULT_EPOCH_SECS,
            seed: Digest::from_bytes(self.seed(step)),
        }
    }

    /// Each dependency of `step` by name, with its entry of `dep_trees`.
    fn named_deps<'a>(
        &'a self,
        step: &PlannedStep,
        dep_trees: &[Digest],
    ) -> Vec<(&'a str, Digest)> {
        debug_assert_eq!(step.deps.len(), dep_trees.len());
        step.deps
            .iter()
            .zip(dep_trees)
            .map(|(&d, &tree)| (self.steps[d].name.as_str(), tree))
            .collect()
    }

    /// The guest's argv: the step's name, then its `args`.
    pub fn argv(&self, step: &PlannedStep) -> Vec<String> {
        std::iter::once(step.name.clone())
            .chain(self.step_def(step).args.iter().cloned())
            .collect()
    }

    /// The seed of `step`'s randomness: a function of the workflow's and the step's names
    /// alone, so that a step draws the same numbers on every machine and in every run.
    pub fn seed(&self, step: &PlannedStep) -> [u8; 32] {
        *step
            .seed
            .get_or_init(|| step_seed(&self.workflow.name, &step.name))
    }

    /// The workflow step behind a planned step.
    pub fn step_def(&self, step: &PlannedStep) -> &Step {
        &self.workflow.steps[step.workflow_index]
    }

    /// Brings what starting step `i` reads into the CPU's caches (see `crate::prefetch`): its
    /// `PlannedStep`, its definition, its name and the first of its dependencies and
    /// dependents. A hint: nothing changes if `i` never runs.
    pub fn prefetch(&self, i: usize) {
        let Some(step) = self.steps.get(i) else {
            return;
        };
        crate::prefetch::read(step);
        crate::prefetch::read(step.name.as_str());
        crate::prefetch::slice(&step.deps, 256);
        crate::prefetch::slice(&step.dependents, 256);
        if let Some(def) = self.workflow.steps.get(step.workflow_index) {
            crate::prefetch::read(def);
        }
    }

    /// Whether any step to run has an `adaptive_timeout`, and so needs, and adds to, the
    /// history of run times.
    pub fn uses_adaptive_timeouts(&self) -> bool {
        self.steps
            .iter()
            .any(|s| self.step_def(s).adaptive_timeout.is_some())
    }
}

/// Each step's index in the workflow, by name.
type Index<'w> = HashMap<&'w str, usize, foldhash::fast::RandomState>;

/// Whether each step is to run: those of `only` and everything they depend on.
fn select(wf: &Workflow, index: &Index<'_>, only: &[String], diags: &mut Diagnostics) -> Vec<bool> {
    if only.is_empty() {
        return vec![true; wf.steps.len()];
    }
    let mut chosen = vec![false; wf.steps.len()];
    let mut todo: Vec<usize> = Vec::new();
    for name in only {
        match index.get(name.as_str()) {
            Some(&i) => todo.push(i),
            None => {
                let mut d =
                    Diagnostic::error(&wf.path, None, format!("--step `{name}`: no such step"));
                let mut names: Vec<&str> = index.keys().copied().collect();
                names.sort_unstable();
                if let Some(s) = crate::workflow::suggest::did_you_mean(name, names) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
            }
        }
    }
    while let Some(i) = todo.pop() {
        if !std::mem::replace(&mut chosen[i], true) {
            todo.extend(
                wf.steps[i]
                    .depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied()),
            );
        }
    }
    chosen
}

/// [`Plan::seed`] of step `step` in workflow `workflow`: blake3 of the two names, behind a
/// tag of its own.
fn step_seed(workflow: &str, step: &str) -> [u8; 32] {
    *blake3::Hasher::new()
        .update(b"hermetic step seed v1\0")
        .update(workflow.as_bytes())
        .update(b"\0")
        .update(step.as_bytes())
        .finalize()
        .as_bytes()
}

/// The longest chain of dependents below each step (the workflow is acyclic: validated).
fn compute_critical_paths(steps: &mut [PlannedStep]) {
    fn depth(i: usize, steps: &[PlannedStep], memo: &mut [Option<u32>]) -> u32 {
        if let Some(d) = memo[i] {
            return d;
        }
        let d = steps[i]
            .dependents
            .iter()
            .map(|&j| 1 + depth(j, steps, memo))
            .max()
            .unwrap_or(0);
        memo[i] = Some(d);
        d
    }
    let mut memo = vec![None; steps.len()];
    for i in 0..steps.len() {
        steps[i].critical_path = depth(i, steps, &mut memo);
    }
}

/// The module each step runs, loaded once per task however many steps run it.
struct Programs<'w> {
    builder: TaskBuilder,
    /// Tasks named by crate, built (or not) once each.
    built: BTreeMap<String, Result<BuiltTask, String>>,
    /// Modules loaded (or not) once each, by path.
    loaded: BTreeMap<PathBuf, Result<Arc<Program>, String>>,
    /// The last step's task and what it resolved to: steps mostly run the same task as the
    /// step before them, and this finds it without joining or comparing paths.
    previous: Option<(&'w TaskRef, Arc<Path>, Arc<Program>)>,
}

impl<'w> Programs<'w> {
    fn new(state_dir: &Path) -> Self {
        Self {
            builder: TaskBuilder::new(state_dir),
            built: BTreeMap::new(),
            loaded: BTreeMap::new(),
            previous: None,
        }
    }

    /// The module file and the loaded program of `step`'s task, or `None` after reporting why
    /// it cannot run to `diags`.
    fn load(
        &mut self,
        wf: &Workflow,
        step: &'w Step,
        sandbox: &Sandbox,
        options: &PlanOptions,
        diags: &mut Diagnostics,
    ) -> Option<(Arc<Path>, Arc<Program>)> {
        if let Some((task, path, program)) = &self.previous
            && *task == &step.task
        {
            return Some((path.clone(), program.clone()));
        }
        // How messages name the task; spelt out only for a message.
        let label = || match &step.task {
            TaskRef::Wasm(p) => p.display().to_string(),
            TaskRef::Crate(name) => format!("task `{name}`"),
        };
        let path = match &step.task {
            TaskRef::Wasm(p) => wf.dir.join(p),
            TaskRef::Crate(name) => {
                // Built once per task, however many steps run it.
                let built = self.built.entry(name.clone()).or_insert_with(|| {
                    self.builder
                        .locate(&wf.dir, name)
                        .and_then(|k| self.builder.build(&k))
                        .map_err(|e| e.to_string())
                });
                match built {
                    Ok(task) => task.wasm.clone(),
                    Err(e) => {
                        diags.push(
                            wf.diagnostic(
                                Some(step.task_span),
                                format!("cannot build task `{name}`"),
                            )
                            .with_note(None, e.clone()),
                        );
                        return None;
                    }
                }
            }
        };
        let result = self
            .loaded
            .entry(path.clone())
            .or_insert_with(|| {
                sandbox
                    .load_file(&path, options.unknown_imports)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone();
        let program = match result {
            Ok(p) => p,
            Err(e) => {
                let mut d = wf.diagnostic(Some(step.task_span), format!("`{}` {e}", label()));
                if e.contains("does not provide") {
                    d = d.with_help(
                        "build the task for wasm32-wasip1 or wasm32-wasip2 against plain WASI, \
                         or pass --unknown-imports-trap to make such imports trap when called",
                    );
                }
                if e.contains("end-of-file") {
                    d = d.with_help("the file looks truncated; rebuild it");
                }
                if !path.exists() {
                    d = wf
                        .diagnostic(
                            Some(step.task_span),
                            format!("task file `{}` does not exist", label()),
                        )
                        .with_help("paths in `task:` are relative to the workflow file");
                }
                diags.push(d);
                return None;
            }
        };
        let path: Arc<Path> = path.into();
        self.previous = Some((&step.task, Arc::clone(&path), Arc::clone(&program)));
        Some((path, program))
    }
}
