//! Tiny deterministic pseudo-random number generation (splitmix64).
//!
//! The generated site must be byte-for-byte identical for a given seed on
//! every platform and for every version of every dependency, so we do not use
//! `rand`'s `StdRng` (whose algorithm is allowed to change between releases).

/// One splitmix64 step: advances `state` and returns the next output.
#[inline]
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stateless 64-bit mix of two values (used to derive per-page / per-link
/// decisions without storing them).
#[inline]
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut s = a ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93).rotate_left(17);
    splitmix64(&mut s)
}

/// `mix` of three values.
#[inline]
pub(crate) fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix(mix(a, b), c)
}

/// Maps a 64-bit hash uniformly-ish into `0..n` (`n > 0`) without modulo bias
/// worth caring about (Lemire's multiply-shift).
#[inline]
pub(crate) fn below(hash: u64, n: u64) -> u64 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u64
}

/// A small sequential generator on top of splitmix64.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_5EED_5EED_5EED)
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    /// Uniform in `0..n`; `n` must be non-zero.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        below(self.next_u64(), n)
    }

    /// True with probability `num / den`.
    #[inline]
    pub(crate) fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_known_values() {
        // Reference values of splitmix64 seeded with 0.
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_is_in_range() {
        let mut r = Rng::new(7);
        for n in 1..200u64 {
            for _ in 0..50 {
                assert!(r.below(n) < n);
            }
        }
    }
}
