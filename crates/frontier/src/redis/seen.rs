//! How a Redis frontier remembers the URLs it queued: an exact set, or a
//! Bloom filter kept in a Redis string.
//!
//! - **Exact** (`exact`, the default): a Redis SET of 16-byte fingerprints,
//!   about 40-50 bytes of Redis memory per URL (payload + set overhead).
//!   Never wrong.
//! - **Bloom** (`bloom:EXPECTED[:ERROR]`, e.g. `bloom:500M:0.001`): per shard
//!   a bit array of `m` bits in one string, `k` bits per URL; sized for
//!   EXPECTED URLs over the whole crawl at false-positive rate ERROR (default
//!   0.001): 1.44·log2(1/ERROR) bits per URL, 1.8 bytes at 0.001. A false
//!   positive takes a new URL for one already queued, so about ERROR of the
//!   crawl's URLs (fewer while the filter is not full) are never fetched;
//!   past EXPECTED the rate climbs. The bit positions are `a + i·b mod m`
//!   (`i < k`, Kirsch & Mitzenmacher), `a` and `b` taken from the
//!   fingerprint by the worker, so the script reads and sets them with one
//!   `BITFIELD` each. (RedisBloom's `BF.ADD` does the same in C; the server
//!   here does not have the module, a string works on any Redis.)
//!
//! The choice belongs to the crawl: the process that creates it stores it
//! (`trawl:{NAME}:seenset`), later workers follow what is stored.

use std::fmt;
use std::str::FromStr;

/// See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SeenSet {
    #[default]
    Exact,
    Bloom {
        /// URLs the whole crawl is expected to queue.
        expected: u64,
        /// Wanted false-positive rate when that many are in.
        error: f64,
    },
}

/// The largest bit array one Redis string holds (512 MB).
const MAX_BITS: u64 = 1 << 32;
const DEFAULT_ERROR: f64 = 0.001;

/// A Bloom filter's size in one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BloomSize {
    /// Bits.
    pub m: u64,
    /// Bits set per URL.
    pub k: u32,
}

impl BloomSize {
    /// The stored form, `"bloom M K"`.
    pub fn stored(&self) -> String {
        format!("bloom {} {}", self.m, self.k)
    }

    /// Parse the stored form.
    pub fn from_stored(s: &str) -> Option<BloomSize> {
        let mut parts = s.strip_prefix("bloom ")?.split(' ');
        let m = parts.next()?.parse().ok()?;
        let k = parts.next()?.parse().ok()?;
        (m > 1 && m <= MAX_BITS && (1..=30).contains(&k)).then_some(BloomSize { m, k })
    }

    /// The two numbers the script derives the bit positions from.
    pub fn probe(&self, fingerprint: u128) -> (u64, u64) {
        let a = (fingerprint as u64) % self.m;
        let b = ((fingerprint >> 64) as u64) % (self.m - 1) + 1;
        (a, b)
    }
}

impl SeenSet {
    /// The filter of one of `shards` shards (the expected URLs split
    /// evenly), or `None` for an exact set.
    pub fn bloom_size(&self, shards: usize) -> Result<Option<BloomSize>, String> {
        let SeenSet::Bloom { expected, error } = *self else {
            return Ok(None);
        };
        let n = (expected as f64 / shards.max(1) as f64).max(1.0);
        let ln2 = std::f64::consts::LN_2;
        let m = (-n * error.ln() / (ln2 * ln2)).ceil().max(64.0);
        if m > MAX_BITS as f64 {
            return Err(format!(
                "a Bloom filter for {expected} URLs at {error} needs {:.0} MB per shard, more than \
                 one Redis string holds (512 MB): use more shards or a higher error",
                m / 8e6
            ));
        }
        let k = ((m / n) * ln2).round().clamp(1.0, 30.0) as u32;
        Ok(Some(BloomSize { m: m as u64, k }))
    }
}

impl FromStr for SeenSet {
    type Err = String;

    fn from_str(s: &str) -> Result<SeenSet, String> {
        let s = s.trim();
        if s == "exact" {
            return Ok(SeenSet::Exact);
        }
        let bad = || {
            format!(
                "seen set {s:?}: expected exact or bloom:EXPECTED[:ERROR] (e.g. bloom:500M:0.001)"
            )
        };
        let rest = s.strip_prefix("bloom:").ok_or_else(bad)?;
        let (count, error) = match rest.split_once(':') {
            Some((c, e)) => (c, e.parse::<f64>().map_err(|_| bad())?),
            None => (rest, DEFAULT_ERROR),
        };
        let (digits, scale) = match count.chars().last() {
            Some('K' | 'k') => (&count[..count.len() - 1], 1_000),
            Some('M' | 'm') => (&count[..count.len() - 1], 1_000_000),
            Some('G' | 'g') => (&count[..count.len() - 1], 1_000_000_000),
            _ => (count, 1),
        };
        let expected = digits
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(scale))
            .filter(|&n| n > 0)
            .ok_or_else(bad)?;
        if !(error > 0.0 && error < 0.5) {
            return Err(format!(
                "seen set {s:?}: the error rate must be between 0 and 0.5"
            ));
        }
        Ok(SeenSet::Bloom { expected, error })
    }
}

impl fmt::Display for SeenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeenSet::Exact => f.write_str("exact"),
            SeenSet::Bloom { expected, error } => write!(f, "bloom:{expected}:{error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_with_suffixes_and_rejects_nonsense() {
        assert_eq!("exact".parse::<SeenSet>().unwrap(), SeenSet::Exact);
        assert_eq!(
            "bloom:500M:0.01".parse::<SeenSet>().unwrap(),
            SeenSet::Bloom {
                expected: 500_000_000,
                error: 0.01
            }
        );
        assert_eq!(
            "bloom:20k".parse::<SeenSet>().unwrap(),
            SeenSet::Bloom {
                expected: 20_000,
                error: 0.001
            }
        );
        for bad in [
            "",
            "bloom",
            "bloom:",
            "bloom:0",
            "bloom:1M:0.7",
            "bloom:xM",
            "set",
        ] {
            assert!(bad.parse::<SeenSet>().is_err(), "{bad:?}");
        }
        let s = SeenSet::Bloom {
            expected: 7,
            error: 0.02,
        };
        assert_eq!(s.to_string().parse::<SeenSet>().unwrap(), s);
    }

    #[test]
    fn sizes_follow_the_textbook_formulas() {
        // 1 M URLs at 1 %: 9.59 bits and 7 hashes per URL.
        let one = SeenSet::Bloom {
            expected: 1_000_000,
            error: 0.01,
        };
        let size = one.bloom_size(1).unwrap().unwrap();
        assert_eq!(size.k, 7);
        assert!((size.m as f64 / 1e6 - 9.585).abs() < 0.01, "{size:?}");
        // Four shards: a quarter each.
        let quarter = one.bloom_size(4).unwrap().unwrap();
        assert!((quarter.m as f64 * 4.0 / size.m as f64 - 1.0).abs() < 1e-3);
        assert_eq!(SeenSet::Exact.bloom_size(3).unwrap(), None);
        // Too big for one string.
        let huge = SeenSet::Bloom {
            expected: 10_000_000_000,
            error: 0.001,
        };
        assert!(huge.bloom_size(1).unwrap_err().contains("more shards"));
        assert!(huge.bloom_size(8).is_err());
        assert!(huge.bloom_size(40).is_ok());
        assert_eq!(BloomSize::from_stored(&size.stored()), Some(size));
        assert_eq!(BloomSize::from_stored("exact"), None);
    }

    #[test]
    fn probes_stay_in_range_and_step_is_never_zero() {
        let size = BloomSize { m: 1000, k: 5 };
        for fp in [0u128, u128::MAX, 1 << 64, 999, 12345678901234567890] {
            let (a, b) = size.probe(fp);
            assert!(a < 1000 && (1..1000).contains(&b));
        }
    }
}
