//! Reports progress, logs and heartbeats through the SDK: `progress N` works through N items,
//! reporting each, then writes `/out/count.txt`.

fn main() {
    hermetic_sdk::main(|args| {
        let n: u64 = match args.first().map(|a| a.parse()) {
            Some(Ok(n)) => n,
            _ => return Err(hermetic_sdk::Error::msg("usage: progress N")),
        };
        hermetic_sdk::info!("working through {n} items");
        for i in 1..=n {
            // A little work per item, so that progress is spread over time.
            let mut x = i;
            for k in 0..200_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(k));
            }
            hermetic_sdk::heartbeat();
            hermetic_sdk::progress(i, Some(n));
        }
        hermetic_sdk::warn!("done with {n} items");
        hermetic_sdk::write_output("count.txt", format!("{n}\n"))
    });
}
