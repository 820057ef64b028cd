//! Prints the environment (sorted), the arguments, and the working directory the guest sees.

fn main() {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    println!("{} env vars", vars.len());
    for (k, v) in vars {
        println!("env {k}={v}");
    }
    for (i, arg) in std::env::args().enumerate() {
        println!("arg[{i}]={arg}");
    }
    match std::env::current_dir() {
        Ok(dir) => println!("current_dir: {}", dir.display()),
        Err(e) => println!("current_dir: error {e}"),
    }
}
