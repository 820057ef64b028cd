//! Unit tests of planning.

use super::*;

/// `(module (func (export "_start")))`, encoded by hand.
const NOOP_WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: () -> ()
    0x03, 0x02, 0x01, 0x00, // functions: one, of type 0
    0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // export _start
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: an empty body
];

/// A step with arguments, an environment, an output, and dependencies named out of
/// alphabetical order, so that the key must sort them.
const WORKFLOW: &str = "\
name: keys
steps:
  zeta:
    task: noop.wasm
  alpha:
    task: noop.wasm
  both:
    task: noop.wasm
    args: [x, y]
    env:
      K: v
    outputs: [o.txt]
    depends_on: [zeta, alpha]
";

fn plan(dir: &Path) -> Plan {
    plan_of(dir, WORKFLOW)
}

fn plan_of(dir: &Path, workflow: &str) -> Plan {
    std::fs::write(dir.join("noop.wasm"), NOOP_WASM).unwrap();
    let path = dir.join("hermetic.yaml");
    std::fs::write(&path, workflow).unwrap();
    let workflow = Workflow::load(&path).unwrap();
    let sandbox = Sandbox::new(1, None).unwrap();
    Plan::new(workflow, &sandbox, &PlanOptions::default()).unwrap()
}

/// An output root for each dependency of `step`, made from the dependency's name.
fn trees(plan: &Plan, step: &PlannedStep) -> Vec<Digest> {
    step.deps
        .iter()
        .map(|&d| Digest::of(plan.steps[d].name.as_bytes()))
        .collect()
}

#[test]
fn the_action_key_is_the_key_of_the_components() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path());
    for step in &plan.steps {
        let trees = trees(&plan, step);
        let components = plan.key_components(step, "engine", &trees);
        assert_eq!(
            plan.action_key(step, "engine", &trees),
            components.key(),
            "`{}`",
            step.name
        );
    }

    let both = plan.steps.iter().find(|s| s.name == "both").unwrap();
    let trees = trees(&plan, both);
    let components = plan.key_components(both, "engine", &trees);
    assert_eq!(components.args, ["both", "x", "y"]);
    assert_eq!(
        components.deps.into_iter().collect::<Vec<_>>(),
        [
            ("alpha".to_owned(), Digest::of(b"alpha")),
            ("zeta".to_owned(), Digest::of(b"zeta")),
        ]
    );
    // Each tree counts for its own dependency.
    let swapped: Vec<Digest> = trees.iter().rev().copied().collect();
    assert_ne!(
        plan.action_key(both, "engine", &swapped),
        plan.action_key(both, "engine", &trees)
    );
}

#[test]
fn a_large_workflow_is_planned_on_every_core_in_order() {
    // Enough steps for `crate::par` to use every core; each depends on the one before, and
    // every third has a limit of its own.
    let n = crate::par::PARALLEL_FROM + 50;
    let mut workflow = String::from("name: big\nsteps:\n");
    for i in 0..n {
        workflow.push_str(&format!("  s{i}:\n    task: noop.wasm\n"));
        if i > 0 {
            workflow.push_str(&format!("    depends_on: [s{}]\n", i - 1));
        }
        if i % 3 == 0 {
            workflow.push_str(&format!("    fuel: {}\n", 1000 + i));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_of(dir.path(), &workflow);
    assert_eq!(plan.steps.len(), n);
    let default_fuel = Limits::default().fuel;
    for (i, step) in plan.steps.iter().enumerate() {
        assert_eq!((step.index, step.workflow_index), (i, i));
        assert_eq!(step.name, format!("s{i}"));
        assert_eq!(step.deps, if i > 0 { vec![i - 1] } else { vec![] });
        assert_eq!(
            step.dependents,
            if i + 1 < n { vec![i + 1] } else { vec![] }
        );
        assert_eq!(plan.seed(step), step_seed("big", &step.name));
        let fuel = if i % 3 == 0 {
            1000 + i as u64
        } else {
            default_fuel
        };
        assert_eq!(step.limits.fuel, fuel, "`{}`", step.name);
        assert_eq!(step.critical_path as usize, n - 1 - i);
    }
    // The seed is a function of the names alone.
    assert_ne!(plan.seed(&plan.steps[0]), plan.seed(&plan.steps[1]));
    assert_eq!(step_seed("big", "s0"), step_seed("big", "s0"));
}
