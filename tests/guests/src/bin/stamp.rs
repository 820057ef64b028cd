//! Writes the wall clock's seconds to `/out/stamp.txt`: a deliberately non-hermetic task (its
//! output depends on the clock), which a chaos suite's clock faults must catch.

fn main() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::fs::write("/out/stamp.txt", format!("{secs}\n")).expect("write /out/stamp.txt");
}
