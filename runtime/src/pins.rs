//! `hermetic.lock` from a [`Plan`]: what the lockfile pins for each task and step.
//!
//! The lockfile format (header, ordering, versioning) belongs to the `hermetic-lockfile` crate;
//! this module decides the content:
//!
//! * each crate task: its source digest, its built module's digest, and the toolchain;
//! * each `.wasm` file a step runs: its path and digest;
//! * each step: its task and module, args, env, each input file's digest, its dependencies,
//!   and `key`, the digest of everything its action key is computed from that is known before
//!   the run (all but the dependencies' outputs, which their own pins cover).

use std::collections::BTreeSet;

use hermetic_cache::Digest;
use hermetic_lockfile::{Lockfile, ModulePin, StepPin, TaskPin};

use crate::plan::Plan;
use crate::workflow::TaskRef;

/// How digests are written in the lockfile.
fn pin(digest: impl std::fmt::Display) -> String {
    format!("blake3:{digest}")
}

/// The lockfile that pins `plan` as it is now.
pub fn lockfile(plan: &Plan, engine: &str) -> Lockfile {
    let mut lock = Lockfile::new();
    for (name, task) in &plan.tasks {
        lock.tasks.push(TaskPin {
            name: name.clone(),
            source: pin(&task.source_digest),
            module: pin(&task.module_digest),
            toolchain: task.toolchain.clone(),
            target: crate::taskbuild::TARGET_TRIPLE.to_owned(),
        });
    }
    let mut modules = BTreeSet::new();
    for step in &plan.steps {
        let def = plan.step_def(step);
        let task = match &def.task {
            TaskRef::Crate(name) => name.clone(),
            TaskRef::Wasm(path) => {
                let path = path.to_string_lossy().replace('\\', "/");
                if modules.insert(path.clone()) {
                    lock.modules.push(ModulePin {
                        path: path.clone(),
                        digest: pin(step.program.digest),
                    });
                }
                path
            }
        };
        // Dependencies' outputs are unknown before the run; a fixed placeholder keeps `key` a
        // function of this step's own definition.
        let deps = vec![Digest::from_bytes([0; 32]); step.deps.len()];
        let key = plan.action_key(step, engine, &deps);
        lock.steps.push(StepPin {
            name: step.name.clone(),
            task,
            module: pin(step.program.digest),
            args: def.args.clone(),
            env: def.env.clone(),
            inputs: step
                .input_files()
                .iter()
                .map(|f| (f.path.clone(), pin(f.digest)))
                .collect(),
            depends_on: step
                .deps
                .iter()
                .map(|&d| plan.steps[d].name.clone())
                .collect(),
            key: pin(key),
        });
    }
    lock.normalize();
    lock
}
