//! Unbounded recursion: the call stack overflows and the guest traps.

fn recurse(n: u64) -> u64 {
    if std::hint::black_box(n) == u64::MAX {
        return 0;
    }
    std::hint::black_box(recurse(std::hint::black_box(n + 1))).wrapping_add(1)
}

fn main() {
    println!("recursing");
    println!("{}", recurse(0));
}
