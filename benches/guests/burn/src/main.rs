//! Burns CPU deterministically: `burn N` runs N rounds of xorshift64 (a few wasm operators
//! each) and exits 0. The same N is the same work, and the same fuel, on every machine.

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_add(std::hint::black_box(i));
    }
    std::hint::black_box(x);
}
