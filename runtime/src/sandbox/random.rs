//! Deterministic randomness: a blake3 extendable output stream keyed by the step's identity.
//!
//! Guests see `random_get` and `wasi:random` as usual, but the bytes are a pure function of the
//! seed, so two runs of the same step see the same "random" numbers.

use std::convert::Infallible;

/// A random number generator reading blake3's XOF for a given seed.
pub(crate) struct SeededRng(blake3::OutputReader);

impl SeededRng {
    /// A generator for `seed` in the domain `purpose` (so that the secure and insecure
    /// generators of one step never share a stream).
    pub(crate) fn new(seed: &[u8; 32], purpose: &str) -> Self {
        let mut hasher = blake3::Hasher::new_keyed(seed);
        hasher.update(purpose.as_bytes());
        Self(hasher.finalize_xof())
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
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
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
}
