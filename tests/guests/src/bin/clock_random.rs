//! Prints what the guest observes of time and randomness, so that the host can assert that both
//! are deterministic: the wall clock, two monotonic-clock differences across 10ms sleeps, 16
//! bytes from the WASI random source, and the keys std seeds `HashMap`s with.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => println!("wall clock: {}.{:09}", d.as_secs(), d.subsec_nanos()),
        Err(e) => println!("wall clock: before the epoch by {:?}", e.duration()),
    }

    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(10));
    let t1 = Instant::now();
    std::thread::sleep(Duration::from_millis(10));
    let t2 = Instant::now();
    let d1 = t1.saturating_duration_since(t0);
    let d2 = t2.saturating_duration_since(t1);
    println!("monotonic diff 1: {}ns", d1.as_nanos());
    println!("monotonic diff 2: {}ns", d2.as_nanos());
    let monotonic = t1 > t0 && t2 > t1;
    println!("monotonic: {monotonic}");

    let mut bytes = [0u8; 16];
    let random = match getrandom::fill(&mut bytes) {
        Ok(()) => hex(&bytes),
        Err(e) => format!("error: {e}"),
    };
    println!("random: {random}");

    // std seeds `RandomState` from the platform (random_get on p1, insecure-seed on p2): if that
    // is not seeded too, `HashMap` iteration order leaks nondeterminism into outputs.
    let state = std::collections::hash_map::RandomState::new();
    let mut hasher = state.build_hasher();
    hasher.write(b"hermetic");
    println!("hashmap seed hash: {:016x}", hasher.finish());

    if !monotonic || d1.is_zero() || d2.is_zero() {
        eprintln!("clock_random: the monotonic clock did not advance across a sleep");
        std::process::exit(1);
    }
}
