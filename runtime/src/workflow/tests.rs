//! End-to-end tests of the workflow module.
use super::*;

fn errors(source: &str) -> String {
    Workflow::parse(Path::new("ci/hermetic.yaml"), source)
        .unwrap_err()
        .to_string()
}

#[test]
fn scratch_print() {
    let mut doc = String::from(
        "name: x\nsteps: {}\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(",");
        doc.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    println!("=====\n{}\n", errors(&doc));
    println!(
        "=====\n{}\n",
        errors("name: ci\nsteps:\n  a:\n    task: t\n    when: !x.failed && y\n")
    );
    println!(
        "=====\n{}\n",
        Workflow::load(Path::new("no/such/hermetic.yaml")).unwrap_err()
    );
    println!("=====\n{}\n", Workflow::load(Path::new("src")).unwrap_err());
}
