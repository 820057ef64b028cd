//! Blocks in a host call (a very long sleep): only the wall-clock timeout can stop it.

fn main() {
    println!("sleeping");
    std::thread::sleep(std::time::Duration::from_secs(1_000_000));
    println!("woke up");
}
