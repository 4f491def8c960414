//! The duplicate index of a distributed crawl, in the crawl's Redis, so
//! every worker checks every page against every worker's pages.
//!
//! One Lua script looks pages up and indexes each that is an original,
//! atomically (the pages a worker checks at the same moment go in one
//! call, in order) (two workers fetching near-duplicates at the same
//! moment cannot both call theirs the original). In a sharded crawl each
//! shard keeps the index of its own sites' pages (a site's pages, and the
//! copies of `www.` and bare domains, meet in one shard; the same text on
//! two unrelated sites in different shards is not found):
//!
//! | key (after `trawl:{NAME}:`) | type | contents |
//! |---|---|---|
//! | `dup:content` | HASH | first 32 hex digits of a content hash → URL of the first page with it |
//! | `dup:sim:<block>:<value>` | SET | `"<SimHash, 16 hex digits> <URL>"` of every original page whose SimHash has that value in that block |
//!
//! The blocks are the permuted tables of [`trawl_traps::index`]: for a
//! distance of 3 bits, four blocks of 16 bits; the script compares the
//! candidates of each block by popcount (in two 32-bit halves, as Lua's
//! `bit` library works on 32 bits). Redis memory: ~4 set entries and a
//! hash entry per original page, about 400 bytes with a 60-byte URL.

use ::redis::Script;
use trawl_traps::{ContentIndex, Digest, IndexError, Verdict};

use super::batch::Batcher;
use super::shard::Con;

/// Several pages at once, in order (a page sees the ones before it in the
/// batch). KEYS[1] the shard's prefix; ARGV[1] the distance, ARGV[2] the
/// number of pages; then per page: URL, content hash (32 hex digits or
/// ''), SimHash (16 hex digits or ''), the number of block values B, and
/// B block values. Returns `{kind, of, distance}` per page.
const CHECK: &str = r#"
local P = KEYS[1]
local distance = tonumber(ARGV[1])
local function pop(x)
  local n = 0
  while x ~= 0 do
    x = bit.band(x, x - 1)
    n = n + 1
  end
  return n
end
local function check(url, content, sim, blocks)
  local itself = false
  if content ~= '' then
    local of = redis.call('HGET', P .. 'dup:content', content)
    if of then
      if of ~= url then return {'duplicate', of, 0} end
      itself = true
    end
  end
  if sim ~= '' then
    local hi = tonumber(string.sub(sim, 1, 8), 16)
    local lo = tonumber(string.sub(sim, 9, 16), 16)
    local best, best_d = nil, 65
    for _, block in ipairs(blocks) do
      local members = redis.call('SMEMBERS', P .. 'dup:sim:' .. block)
      for _, m in ipairs(members) do
        local d = pop(bit.bxor(hi, tonumber(string.sub(m, 1, 8), 16)))
          + pop(bit.bxor(lo, tonumber(string.sub(m, 9, 16), 16)))
        if d <= distance then
          local other = string.sub(m, 18)
          if other == url then
            itself = true
          elseif d < best_d or (d == best_d and other < best) then
            best, best_d = other, d
          end
        end
      end
    end
    if best then return {'near', best, best_d} end
  end
  if not itself then
    if content ~= '' then redis.call('HSETNX', P .. 'dup:content', content, url) end
    if sim ~= '' then
      for _, block in ipairs(blocks) do
        redis.call('SADD', P .. 'dup:sim:' .. block, sim .. ' ' .. url)
      end
    end
  end
  return {'original', '', 0}
end
local out = {}
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  local n = tonumber(ARGV[i + 3])
  local blocks = {}
  for j = 1, n do blocks[j] = ARGV[i + 3 + j] end
  out[#out + 1] = check(ARGV[i], ARGV[i + 1], ARGV[i + 2], blocks)
  i = i + 4 + n
end
return out
"#;

/// One page's question: URL, content hash, SimHash, block values.
type Question = [String; 3];
type Asked = (Question, Vec<String>);
/// `(kind, of, distance)` as the script answers.
type Answer = (String, String, u32);

/// See the module documentation.
pub struct RedisIndex {
    /// Per shard: the checks of many pages in one script call.
    checkers: Vec<Batcher<Asked, Answer>>,
    distance: u32,
}

/// Pages checked per script call at most.
const CHECK_BATCH: usize = 64;

impl RedisIndex {
    pub(super) fn new(shards: Vec<(Con, String)>, distance: u32) -> RedisIndex {
        let distance = distance.min(trawl_traps::index::MAX_DISTANCE);
        let script = Script::new(CHECK);
        let checkers = shards
            .into_iter()
            .map(|(con, prefix)| {
                let script = script.clone();
                Batcher::new(
                    CHECK_BATCH,
                    |_: &Asked| 1,
                    move |pages: Vec<Asked>| {
                        let (mut con, script, prefix) =
                            (con.clone(), script.clone(), prefix.clone());
                        async move {
                            let mut inv = script.prepare_invoke();
                            inv.key(&prefix).arg(distance).arg(pages.len());
                            for ([url, content, sim], blocks) in &pages {
                                inv.arg(url).arg(content).arg(sim).arg(blocks.len());
                                for b in blocks {
                                    inv.arg(b);
                                }
                            }
                            inv.invoke_async::<Vec<Answer>>(&mut con)
                                .await
                                .map_err(|e| format!("redis: {e}"))
                        }
                    },
                )
            })
            .collect();
        RedisIndex { checkers, distance }
    }

    /// The shard of a page: its site's (see `topology.rs`).
    fn shard(&self, url: &str) -> usize {
        let n = self.checkers.len();
        if n == 1 {
            return 0;
        }
        url::Url::parse(url)
            .map(|u| super::topology::shard_of(&trawl_core::canon::host_key(&u), n))
            .unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl ContentIndex for RedisIndex {
    async fn check(&self, url: &str, digest: Digest) -> Result<Verdict, IndexError> {
        let blocks = digest.simhash.map_or_else(Vec::new, |h| {
            trawl_traps::index::block_values(self.distance, h)
                .into_iter()
                .enumerate()
                .map(|(i, value)| format!("{i}:{value:x}"))
                .collect()
        });
        let question = [
            url.to_string(),
            digest
                .content
                .map(|c| format!("{c:032x}"))
                .unwrap_or_default(),
            digest
                .simhash
                .map(|h| format!("{h:016x}"))
                .unwrap_or_default(),
        ];
        let (kind, of, distance) = self.checkers[self.shard(url)]
            .call((question, blocks))
            .await
            .map_err(IndexError::Storage)?;
        Ok(match kind.as_str() {
            "duplicate" => Verdict::Duplicate { of },
            "near" => Verdict::NearDuplicate { of, distance },
            _ => Verdict::Original,
        })
    }
}
