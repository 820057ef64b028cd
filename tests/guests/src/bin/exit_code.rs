//! Exits with the code given as argv[1].

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    match arg.parse::<i32>() {
        Ok(code) => {
            println!("exiting with {code}");
            std::process::exit(code);
        }
        Err(e) => {
            eprintln!("exit_code: argv[1] must be an integer, got {arg:?}: {e}");
            std::process::exit(101);
        }
    }
}
