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
//! | `dup:sim` | HASH | `<block>:<value>` → `"<SimHash, 16 hex digits> <URL>\n"` of every original page whose SimHash has that value in that block, one after the other |
//!
//! The blocks are the permuted tables of [`trawl_traps::index`]: for a
//! distance of 3 bits, four blocks of 16 bits; the script compares the
//! candidates of each block by popcount (in two 32-bit halves, as Lua's
//! `bit` library works on 32 bits). A call of many pages reads every
//! field its pages need with two `HMGET`s and writes what changed with at
//! most two `HSET`s, so the index costs four Redis commands per call, not
//! ten per page. Redis memory: four list entries and a hash entry per
//! original page, about 400 bytes with a 60-byte URL.

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
local K_CONTENT = P .. 'dup:content'
local K_SIM = P .. 'dup:sim'
local distance = tonumber(ARGV[1])
-- Bits set in a 32-bit value (SWAR: constant time, as most candidates
-- differ in about half their bits).
local function pop(x)
  if x == 0 then return 0 end
  x = x - bit.band(bit.rshift(x, 1), 0x55555555)
  x = bit.band(x, 0x33333333) + bit.band(bit.rshift(x, 2), 0x33333333)
  x = bit.band(x + bit.rshift(x, 4), 0x0F0F0F0F)
  x = x + bit.rshift(x, 8)
  x = x + bit.rshift(x, 16)
  return bit.band(x, 0x3F)
end
-- Every page of the call, and every field they need, read at once.
local pages, cfields, sfields = {}, {}, {}
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  local n = tonumber(ARGV[i + 3])
  local page = { url = ARGV[i], content = ARGV[i + 1], sim = ARGV[i + 2], blocks = {} }
  for j = 1, n do
    page.blocks[j] = ARGV[i + 3 + j]
    sfields[#sfields + 1] = ARGV[i + 3 + j]
  end
  if page.content ~= '' then cfields[#cfields + 1] = page.content end
  pages[#pages + 1] = page
  i = i + 4 + n
end
-- field -> value (false: absent), updated as the pages are indexed, so a
-- page sees the ones before it in the call.
local content, sims = {}, {}
if #cfields > 0 then
  local v = redis.call('HMGET', K_CONTENT, unpack(cfields))
  for j, f in ipairs(cfields) do content[f] = v[j] end
end
if #sfields > 0 then
  local v = redis.call('HMGET', K_SIM, unpack(sfields))
  for j, f in ipairs(sfields) do sims[f] = v[j] or '' end
end
local changed_content, changed_sims = {}, {}
local function check(page)
  local url, itself = page.url, false
  if page.content ~= '' then
    local of = content[page.content]
    if of then
      if of ~= url then return {'duplicate', of, 0} end
      itself = true
    end
  end
  local sim = page.sim
  if sim ~= '' then
    local hi = tonumber(string.sub(sim, 1, 8), 16)
    local lo = tonumber(string.sub(sim, 9, 16), 16)
    local best, best_d = nil, 65
    -- A page near this one is listed under several of its blocks: each
    -- candidate is compared once.
    local tried = {}
    for _, block in ipairs(page.blocks) do
      for m in string.gmatch(sims[block], '[^\n]+') do
        local d = 65
        if not tried[m] then
          tried[m] = true
          d = pop(bit.bxor(hi, tonumber(string.sub(m, 1, 8), 16)))
            + pop(bit.bxor(lo, tonumber(string.sub(m, 9, 16), 16)))
        end
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
    if page.content ~= '' and not content[page.content] then
      content[page.content] = url
      changed_content[page.content] = true
    end
    if sim ~= '' then
      local entry = sim .. ' ' .. url .. '\n'
      for _, block in ipairs(page.blocks) do
        sims[block] = sims[block] .. entry
        changed_sims[block] = true
      end
    end
  end
  return {'original', '', 0}
end
local out = {}
for _, page in ipairs(pages) do out[#out + 1] = check(page) end
local function store(key, changed, values)
  local args = {}
  for f in pairs(changed) do
    args[#args + 1] = f
    args[#args + 1] = values[f]
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
end
store(K_CONTENT, changed_content, content)
store(K_SIM, changed_sims, sims)
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
                    super::BATCH_LINGER,
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
