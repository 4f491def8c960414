//! The duplicate and near-duplicate index of a crawl.
//!
//! A page is a *duplicate* of the first page with the same content hash,
//! and a *near-duplicate* of the nearest earlier page whose SimHash is at
//! most `distance` bits away. Near neighbours are found with permuted
//! tables (Manku et al., WWW 2007): the 64 bits are cut into
//! `distance + 1` blocks, and two fingerprints within `distance` bits
//! agree exactly on at least one block, so one table per block, keyed by
//! that block's value, yields every candidate; each is then checked by
//! popcount. With the default 3 bits that is four tables of 16-bit keys:
//! at a million pages a lookup checks ~60 candidates.
//!
//! Only originals are indexed (a duplicate points at the page it
//! duplicates), and a URL never matches itself, so a revisit of a page is
//! not its own near-duplicate. Memory: ~100 bytes per page plus the URL.

use std::collections::HashMap;

use parking_lot::Mutex;

/// The near-duplicate distance unless a crawl sets another.
pub const DEFAULT_DISTANCE: u32 = 3;
/// The widest distance the tables serve (8 blocks of 8 bits: beyond it
/// the buckets hold most of the index).
pub const MAX_DISTANCE: u32 = 7;

/// What the index is told about a page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest {
    /// The first 128 bits of the body's content hash.
    pub content: Option<u128>,
    /// The SimHash of its visible text (HTML pages with words).
    pub simhash: Option<u64>,
}

impl Digest {
    /// A digest from a hex content hash (as items carry it) and a SimHash.
    pub fn new(content_hash_hex: Option<&str>, simhash: Option<u64>) -> Digest {
        Digest {
            content: content_hash_hex
                .and_then(|h| h.get(..32))
                .and_then(|h| u128::from_str_radix(h, 16).ok()),
            simhash,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.content.is_none() && self.simhash.is_none()
    }
}

/// What the index says of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing like it before (it is now indexed).
    Original,
    /// The same body as this earlier page.
    Duplicate { of: String },
    /// Text within `distance` bits of this earlier page's.
    NearDuplicate { of: String, distance: u32 },
}

impl Verdict {
    /// A duplicate or a near-duplicate.
    pub fn is_duplicate(&self) -> bool {
        !matches!(self, Verdict::Original)
    }

    /// The page this one repeats.
    pub fn of(&self) -> Option<&str> {
        match self {
            Verdict::Original => None,
            Verdict::Duplicate { of } | Verdict::NearDuplicate { of, .. } => Some(of),
        }
    }
}

/// Why a shared index could not answer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("duplicate index: {0}")]
    Storage(String),
}

/// An index the crawl asks about each page: in memory, in the `--state`
/// directory, or in Redis for a distributed crawl.
#[async_trait::async_trait]
pub trait ContentIndex: Send + Sync {
    /// Classify the page at `url` and index it if it is an original.
    async fn check(&self, url: &str, digest: Digest) -> Result<Verdict, IndexError>;
}

/// One block of the fingerprint: its shift and mask.
#[derive(Debug, Clone, Copy)]
struct Block {
    shift: u32,
    mask: u64,
}

impl Block {
    /// The table key of `h`: its block's value, spread over 64 bits (a
    /// bijection) for the map's pre-hashed keys.
    fn key(&self, h: u64) -> u64 {
        ((h >> self.shift) & self.mask).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// The blocks for `distance`: `distance + 1` of them, sizes as even as
/// can be.
fn blocks(distance: u32) -> Vec<Block> {
    let n = distance + 1;
    let mut out = Vec::with_capacity(n as usize);
    let mut shift = 0;
    for i in 0..n {
        let bits = 64 / n + u32::from(i < 64 % n);
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        out.push(Block { shift, mask });
        shift += bits;
    }
    out
}

/// The value of each block of `h` for `distance` (what a shared index
/// keys its tables by).
pub fn block_values(distance: u32, h: u64) -> Vec<u64> {
    blocks(distance.min(MAX_DISTANCE))
        .iter()
        .map(|b| (h >> b.shift) & b.mask)
        .collect()
}

/// Hash map keys that are already well mixed (block values of a SimHash,
/// content hash prefixes).
type Fast<K, V> = HashMap<K, V, trawl_core::Prehashed>;

/// The in-memory tables (used alone, or in front of a persistent store).
pub struct SimIndex {
    distance: u32,
    blocks: Vec<Block>,
    /// Per block: block value → ids of the pages having it.
    tables: Vec<Fast<u64, Vec<u32>>>,
    /// Page id → its SimHash (0 for a page without one; such ids are in
    /// no table).
    simhashes: Vec<u64>,
    /// Page id → its URL, end to end in one string.
    urls: String,
    url_ends: Vec<usize>,
    /// Content hash → page id.
    contents: Fast<u128, u32>,
}

impl SimIndex {
    /// An empty index matching SimHashes within `distance` bits (at most
    /// [`MAX_DISTANCE`]).
    pub fn new(distance: u32) -> SimIndex {
        let distance = distance.min(MAX_DISTANCE);
        let blocks = blocks(distance);
        SimIndex {
            distance,
            tables: blocks.iter().map(|_| Fast::default()).collect(),
            blocks,
            simhashes: Vec::new(),
            urls: String::new(),
            url_ends: Vec::new(),
            contents: Fast::default(),
        }
    }

    pub fn distance(&self) -> u32 {
        self.distance
    }

    /// Pages indexed.
    pub fn len(&self) -> usize {
        self.simhashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.simhashes.is_empty()
    }

    fn url(&self, id: u32) -> &str {
        let id = id as usize;
        let start = if id == 0 { 0 } else { self.url_ends[id - 1] };
        &self.urls[start..self.url_ends[id]]
    }

    /// The page's verdict, without indexing it.
    pub fn lookup(&self, url: &str, digest: Digest) -> Verdict {
        self.find(url, digest).0
    }

    /// The verdict, and whether the page matched its own URL (a revisit,
    /// already indexed).
    fn find(&self, url: &str, digest: Digest) -> (Verdict, bool) {
        let mut itself = false;
        if let Some(content) = digest.content
            && let Some(&id) = self.contents.get(&content)
        {
            if self.url(id) != url {
                let of = self.url(id).to_string();
                return (Verdict::Duplicate { of }, false);
            }
            itself = true;
        }
        let Some(h) = digest.simhash else {
            return (Verdict::Original, itself);
        };
        let mut best: Option<(u32, u32)> = None;
        for (block, table) in self.blocks.iter().zip(&self.tables) {
            let Some(ids) = table.get(&block.key(h)) else {
                continue;
            };
            for &id in ids {
                let d = (self.simhashes[id as usize] ^ h).count_ones();
                if d > self.distance || best.is_some_and(|(bd, bid)| (bd, bid) <= (d, id)) {
                    continue;
                }
                if self.url(id) == url {
                    itself = true;
                } else {
                    best = Some((d, id));
                }
            }
        }
        match best {
            Some((distance, id)) => {
                let of = self.url(id).to_string();
                (Verdict::NearDuplicate { of, distance }, false)
            }
            None => (Verdict::Original, itself),
        }
    }

    /// Index a page as an original (loading a persisted index, or after
    /// [`SimIndex::lookup`] said so).
    pub fn insert(&mut self, url: &str, digest: Digest) {
        if digest.is_empty() {
            return;
        }
        let Ok(id) = u32::try_from(self.simhashes.len()) else {
            return;
        };
        self.urls.push_str(url);
        self.url_ends.push(self.urls.len());
        self.simhashes.push(digest.simhash.unwrap_or(0));
        if let Some(content) = digest.content {
            self.contents.entry(content).or_insert(id);
        }
        if let Some(h) = digest.simhash {
            for (block, table) in self.blocks.iter().zip(&mut self.tables) {
                table.entry(block.key(h)).or_default().push(id);
            }
        }
    }

    /// Look the page up and index it when it is a new original.
    pub fn check(&mut self, url: &str, digest: Digest) -> Verdict {
        let (verdict, itself) = self.find(url, digest);
        if verdict == Verdict::Original && !itself {
            self.insert(url, digest);
        }
        verdict
    }
}

/// The index of a crawl without persistence.
pub struct MemoryIndex {
    inner: Mutex<SimIndex>,
}

impl MemoryIndex {
    pub fn new(distance: u32) -> MemoryIndex {
        MemoryIndex {
            inner: Mutex::new(SimIndex::new(distance)),
        }
    }

    /// Pages indexed.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl ContentIndex for MemoryIndex {
    async fn check(&self, url: &str, digest: Digest) -> Result<Verdict, IndexError> {
        Ok(self.inner.lock().check(url, digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(h: u64) -> Digest {
        Digest {
            content: None,
            simhash: Some(h),
        }
    }

    /// A brute-force scan, for checking the tables.
    fn nearest(all: &[(String, u64)], url: &str, h: u64, distance: u32) -> Option<(u32, usize)> {
        all.iter()
            .enumerate()
            .filter(|(_, (u, _))| u != url)
            .map(|(i, (_, x))| ((x ^ h).count_ones(), i))
            .filter(|(d, _)| *d <= distance)
            .min()
    }

    #[test]
    fn blocks_cover_64_bits() {
        for d in 0..=MAX_DISTANCE {
            let b = blocks(d);
            assert_eq!(b.len() as u32, d + 1);
            let covered = b.iter().fold(0u64, |acc, x| acc | (x.mask << x.shift));
            assert_eq!(covered, u64::MAX, "distance {d}");
        }
    }

    #[test]
    fn finds_every_neighbour_a_scan_finds() {
        let mut x = 0x1234_5678u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for distance in [0, 1, 3, 5] {
            let mut index = SimIndex::new(distance);
            let mut originals: Vec<(String, u64)> = Vec::new();
            for i in 0..3000 {
                // Every third page is a few bits from an earlier one.
                let h = if i % 3 == 2 && !originals.is_empty() {
                    let base = originals[(next() as usize) % originals.len()].1;
                    let flips = next() % 6;
                    (0..flips).fold(base, |h, _| h ^ (1 << (next() % 64)))
                } else {
                    next()
                };
                let url = format!("http://e.com/{i}");
                let expected = nearest(&originals, &url, h, distance);
                let verdict = index.check(&url, sim(h));
                match (expected, &verdict) {
                    (None, Verdict::Original) => originals.push((url, h)),
                    (Some((d, at)), Verdict::NearDuplicate { of, distance: got }) => {
                        assert_eq!(*got, d);
                        assert_eq!(
                            (originals[at].1 ^ h).count_ones(),
                            (nearest_url_hash(&originals, of) ^ h).count_ones()
                        );
                    }
                    other => panic!("distance {distance}: {other:?}"),
                }
            }
            assert_eq!(index.len(), originals.len());
        }
    }

    fn nearest_url_hash(all: &[(String, u64)], url: &str) -> u64 {
        all.iter().find(|(u, _)| u == url).map(|(_, h)| *h).unwrap()
    }

    #[test]
    fn exact_duplicates_and_self() {
        let mut index = SimIndex::new(3);
        let a = Digest::new(Some(&"ab".repeat(32)), Some(1));
        assert_eq!(index.check("http://e.com/a", a), Verdict::Original);
        // The same body elsewhere.
        assert_eq!(
            index.check("http://e.com/b", a),
            Verdict::Duplicate {
                of: "http://e.com/a".into()
            }
        );
        // A revisit of the same URL is not its own duplicate, and is not
        // indexed twice.
        assert_eq!(index.check("http://e.com/a", a), Verdict::Original);
        assert_eq!(index.len(), 1);
        // Another body, text one bit away.
        let c = Digest::new(Some(&"cd".repeat(32)), Some(3));
        assert_eq!(
            index.check("http://e.com/c", c),
            Verdict::NearDuplicate {
                of: "http://e.com/a".into(),
                distance: 1
            }
        );
        // Nothing to go by: an original, not indexed.
        let before = index.len();
        assert_eq!(
            index.check("http://e.com/d", Digest::default()),
            Verdict::Original
        );
        assert_eq!(index.len(), before);
    }
}
