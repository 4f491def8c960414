//! The duplicate index of a distributed crawl, in the crawl's Redis, so
//! every worker checks every page against every worker's pages.
//!
//! One Lua script per page looks the page up and indexes it when it is an
//! original, atomically (two workers fetching near-duplicates at the same
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

use super::shard::Con;

const CHECK: &str = r#"
local P = KEYS[1]
local url = ARGV[1]
local content = ARGV[2]
local sim = ARGV[3]
local distance = tonumber(ARGV[4])
local itself = false
if content ~= '' then
  local of = redis.call('HGET', P .. 'dup:content', content)
  if of then
    if of ~= url then return {'duplicate', of, 0} end
    itself = true
  end
end
local function pop(x)
  local n = 0
  while x ~= 0 do
    x = bit.band(x, x - 1)
    n = n + 1
  end
  return n
end
if sim ~= '' then
  local hi = tonumber(string.sub(sim, 1, 8), 16)
  local lo = tonumber(string.sub(sim, 9, 16), 16)
  local best, best_d = nil, 65
  for i = 5, #ARGV do
    local members = redis.call('SMEMBERS', P .. 'dup:sim:' .. ARGV[i])
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
    for i = 5, #ARGV do
      redis.call('SADD', P .. 'dup:sim:' .. ARGV[i], sim .. ' ' .. url)
    end
  end
end
return {'original', '', 0}
"#;

/// See the module documentation.
pub struct RedisIndex {
    /// Per shard: its connection and key prefix.
    shards: Vec<(Con, String)>,
    distance: u32,
    script: Script,
}

impl RedisIndex {
    pub(super) fn new(shards: Vec<(Con, String)>, distance: u32) -> RedisIndex {
        RedisIndex {
            shards,
            distance: distance.min(trawl_traps::index::MAX_DISTANCE),
            script: Script::new(CHECK),
        }
    }

    /// The shard of a page: its site's (see `topology.rs`).
    fn shard(&self, url: &str) -> &(Con, String) {
        let n = self.shards.len();
        let k = if n == 1 {
            0
        } else {
            url::Url::parse(url)
                .map(|u| super::topology::shard_of(&trawl_core::canon::host_key(&u), n))
                .unwrap_or(0)
        };
        &self.shards[k]
    }
}

#[async_trait::async_trait]
impl ContentIndex for RedisIndex {
    async fn check(&self, url: &str, digest: Digest) -> Result<Verdict, IndexError> {
        let (con, prefix) = self.shard(url);
        let mut inv = self.script.prepare_invoke();
        inv.key(prefix)
            .arg(url)
            .arg(
                digest
                    .content
                    .map(|c| format!("{c:032x}"))
                    .unwrap_or_default(),
            )
            .arg(
                digest
                    .simhash
                    .map(|h| format!("{h:016x}"))
                    .unwrap_or_default(),
            )
            .arg(self.distance);
        if let Some(h) = digest.simhash {
            for (i, value) in trawl_traps::index::block_values(self.distance, h)
                .into_iter()
                .enumerate()
            {
                inv.arg(format!("{i}:{value:x}"));
            }
        }
        let (kind, of, distance): (String, String, u32) = inv
            .invoke_async(&mut con.clone())
            .await
            .map_err(|e| IndexError::Storage(format!("redis: {e}")))?;
        Ok(match kind.as_str() {
            "duplicate" => Verdict::Duplicate { of },
            "near" => Verdict::NearDuplicate { of, distance },
            _ => Verdict::Original,
        })
    }
}
