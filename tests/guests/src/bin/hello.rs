//! Prints a greeting, its arguments (one per line) and its environment (sorted); exits 0.

fn main() {
    println!("hello from wasm");
    for (i, arg) in std::env::args().enumerate() {
        println!("arg[{i}]={arg}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (k, v) in vars {
        println!("env {k}={v}");
    }
}
