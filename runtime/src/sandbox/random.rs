//! Deterministic randomness: a blake3 extendable output stream keyed by the step's identity.
//!
//! Guests see `random_get` and `wasi:random` as usual, but the bytes are a pure function of the
//! seed, so two runs of the same step see the same "random" numbers.

use std::convert::Infallible;

/// A random number generator reading blake3's XOF for a given seed.
///
/// The stream is keyed on the guest's first draw: most guests never draw, and keying two
/// streams for every step was 1% of a worker's time on no-op steps.
pub(crate) struct SeededRng {
    seed: [u8; 32],
    purpose: &'static str,
    stream: Option<blake3::OutputReader>,
}

impl SeededRng {
    /// A generator for `seed` in the domain `purpose` (so that the secure and insecure
    /// generators of one step never share a stream).
    pub(crate) fn new(seed: &[u8; 32], purpose: &'static str) -> Self {
        Self {
            seed: *seed,
            purpose,
            stream: None,
        }
    }

    /// Fills `dst` from the stream: blake3 keyed with the seed, over the purpose, read as an
    /// XOF from its start.
    fn fill(&mut self, dst: &mut [u8]) {
        let (seed, purpose) = (&self.seed, self.purpose);
        self.stream
            .get_or_insert_with(|| {
                let mut hasher = blake3::Hasher::new_keyed(seed);
                hasher.update(purpose.as_bytes());
                hasher.finalize_xof()
            })
            .fill(dst);
    }
}

impl std::fmt::Debug for SeededRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeededRng")
    }
}

impl rand_core::TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn same_seed_same_stream_and_purposes_differ() {
        let seed = [7; 32];
        let a: Vec<u64> = {
            let mut r = SeededRng::new(&seed, "secure");
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SeededRng::new(&seed, "secure");
            (0..4).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = SeededRng::new(&seed, "insecure");
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// The stream is exactly blake3's XOF keyed with the seed over the purpose, however it is
    /// drawn: a step's random numbers are part of its outputs, and so of the cache.
    #[test]
    fn the_stream_is_blake3_keyed_with_the_seed() {
        let seed = [9; 32];
        let mut expected = [0u8; 45];
        let mut hasher = blake3::Hasher::new_keyed(&seed);
        hasher.update(b"insecure");
        hasher.finalize_xof().fill(&mut expected);

        let mut r = SeededRng::new(&seed, "insecure");
        let mut drawn = Vec::new();
        drawn.extend_from_slice(&r.next_u32().to_le_bytes());
        drawn.extend_from_slice(&r.next_u64().to_le_bytes());
        let mut rest = [0u8; 33];
        r.fill_bytes(&mut rest);
        drawn.extend_from_slice(&rest);
        assert_eq!(drawn, expected);
    }
}
