//! Pure compute forever: only fuel or the wall-clock timeout can stop it.

fn main() {
    println!("looping");
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}
