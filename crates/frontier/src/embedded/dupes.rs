//! The duplicate index of a `--state` crawl: the memory tables of
//! [`SimIndex`] in front of a `dupes` keyspace that holds every original
//! page, so a resumed crawl or a recrawl knows the pages of earlier runs.
//!
//! | key | value |
//! |---|---|
//! | 16-byte URL fingerprint | flags (1 = content hash, 2 = SimHash), content hash (16), SimHash (8, little-endian), URL |

use fjall::Keyspace;
use parking_lot::Mutex;
use trawl_traps::{ContentIndex, Digest, IndexError, SimIndex, Verdict};

/// See the module documentation.
pub struct StateIndex {
    mem: Mutex<SimIndex>,
    keyspace: Keyspace,
}

fn encode(url: &str, digest: Digest) -> Vec<u8> {
    let mut v = Vec::with_capacity(25 + url.len());
    v.push(u8::from(digest.content.is_some()) | (u8::from(digest.simhash.is_some()) << 1));
    v.extend_from_slice(&digest.content.unwrap_or(0).to_le_bytes());
    v.extend_from_slice(&digest.simhash.unwrap_or(0).to_le_bytes());
    v.extend_from_slice(url.as_bytes());
    v
}

fn decode(v: &[u8]) -> Option<(&str, Digest)> {
    let flags = *v.first()?;
    let content = u128::from_le_bytes(v.get(1..17)?.try_into().ok()?);
    let simhash = u64::from_le_bytes(v.get(17..25)?.try_into().ok()?);
    let url = std::str::from_utf8(v.get(25..)?).ok()?;
    Some((
        url,
        Digest {
            content: (flags & 1 != 0).then_some(content),
            simhash: (flags & 2 != 0).then_some(simhash),
        },
    ))
}

impl StateIndex {
    /// Load the index kept in `keyspace`.
    pub(crate) fn load(keyspace: Keyspace, distance: u32) -> Result<StateIndex, IndexError> {
        let mut mem = SimIndex::new(distance);
        for guard in keyspace.iter() {
            let (_, value) = guard
                .into_inner()
                .map_err(|e| IndexError::Storage(format!("reading the index: {e}")))?;
            if let Some((url, digest)) = decode(&value) {
                mem.insert(url, digest);
            }
        }
        Ok(StateIndex {
            mem: Mutex::new(mem),
            keyspace,
        })
    }

    /// Pages indexed.
    pub fn len(&self) -> usize {
        self.mem.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl ContentIndex for StateIndex {
    async fn check(&self, url: &str, digest: Digest) -> Result<Verdict, IndexError> {
        let (verdict, added) = {
            let mut mem = self.mem.lock();
            let before = mem.len();
            let verdict = mem.check(url, digest);
            (verdict, mem.len() > before)
        };
        if added {
            self.keyspace
                .insert(trawl_core::fingerprint(url), encode(url, digest))
                .map_err(|e| IndexError::Storage(format!("storing an index entry: {e}")))?;
        }
        Ok(verdict)
    }
}
