//! Spins for argv[1] iterations of integer work, then prints the result: a step that takes a
//! while and then succeeds.

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let n: u64 = arg.parse().unwrap_or_else(|e| {
        eprintln!("spin: argv[1] must be an iteration count, got {arg:?}: {e}");
        std::process::exit(2);
    });
    let mut x = 1u64;
    for i in 0..n {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    println!("spun {n}: {x:016x}");
}
