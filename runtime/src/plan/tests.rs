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
    std::fs::write(dir.join("noop.wasm"), NOOP_WASM).unwrap();
    let path = dir.join("hermetic.yaml");
    std::fs::write(&path, WORKFLOW).unwrap();
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
