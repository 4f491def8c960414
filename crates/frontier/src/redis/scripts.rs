//! The Lua scripts behind [`RedisFrontier`](super::RedisFrontier).
//!
//! Every state change of the frontier is one script, so it is atomic on the
//! server: two workers can never both enqueue or both lease one URL. Each
//! script is the shared [`PRELUDE`] (key names, the server clock, the host
//! bookkeeping helpers) followed by its own body, and is sent with EVALSHA
//! (falling back to EVAL + SCRIPT LOAD after a server restart emptied the
//! script cache).
//!
//! Calling convention: `KEYS[1]` is the shard's key prefix (`trawl:{NAME}:`,
//! or `trawl:{NAME/k}:` for shard k of a sharded crawl); every key a script
//! touches is `KEYS[1] .. suffix`, so all of them share the prefix's hash
//! tag and therefore its Redis Cluster slot. `ARGV[1]` is the per-host lease
//! limit; `ARGV[2]` lists the leases whose fetch ended since the last call
//! (comma-separated ids, usually empty): every script marks them fetched
//! first, so the `fetched` notice of a page rides on the next call instead
//! of costing one of its own. The script's own arguments start at `ARGV[3]`.
//!
//! A lease record (`lease` hash, by lease id) is one string:
//! `<f><start>\t<worker>\t<host>\t<request JSON>`, `f` being `0` while the
//! lease is fetching and `1` once fetched (JSON text has no raw tab, nor do
//! hosts and worker ids).
//!
//! Times are microseconds since the epoch by the Redis server's `TIME`, so
//! workers with skewed clocks agree. Lua numbers are doubles: integers up to
//! 2^53 are exact, which covers microsecond timestamps, but `tostring` and
//! `..` print only 14 digits, so numbers reach Redis as command arguments
//! (converted exactly by Redis) or through `string.format('%.0f', n)`.

use ::redis::Script;

/// Key names, the clock, and the host bookkeeping shared by every script.
const PRELUDE: &str = r#"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local P = KEYS[1]
local LIMIT = tonumber(ARGV[1])
local T = redis.call('TIME')
local NOW = tonumber(T[1]) * 1000000 + tonumber(T[2])
local K_SEEN = P .. 'seen'
local K_READY = P .. 'ready'
local K_FULL = P .. 'full'
local K_NEXT = P .. 'next'
local K_HOSTLEASES = P .. 'hostleases'
local K_HELD = P .. 'hostheld'
local K_ACTIVE = P .. 'active'
local K_QUEUED = P .. 'queued'
local K_SEQ = P .. 'leaseseq'
local K_LEASES = P .. 'leases'
local K_LEASE = P .. 'lease'
local K_COUNTERS = P .. 'counters'
local K_WORKERS = P .. 'workers'
local K_PUSHED = P .. 'pushed'
local CHANNEL = P .. 'wakeup'
local WOKE = false

local function qkey(host) return P .. 'queue:' .. host end
local function wkey(worker) return P .. 'worker:' .. worker end

-- Put `host` where it belongs: `ready` (queued work, fewer fetching leases
-- than the limit, scored by its next-allowed time), `full` (queued work, at
-- the limit), or neither; forget idle hosts (nothing queued or leased). A
-- host entering `ready` wakes idle workers.
local function refresh(host)
  local n = redis.call('LLEN', qkey(host))
  local c = tonumber(redis.call('HGET', K_HOSTLEASES, host) or 0)
  if n > 0 and c < LIMIT then
    local was = redis.call('ZSCORE', K_READY, host)
    local t = tonumber(redis.call('HGET', K_NEXT, host) or 0)
    redis.call('ZADD', K_READY, t, host)
    if not was then
      redis.call('SREM', K_FULL, host)
      WOKE = true
    end
  elseif n > 0 then
    redis.call('ZREM', K_READY, host)
    redis.call('SADD', K_FULL, host)
  else
    redis.call('ZREM', K_READY, host)
    redis.call('SREM', K_FULL, host)
    if tonumber(redis.call('HGET', K_HELD, host) or 0) <= 0 then
      redis.call('SREM', K_ACTIVE, host)
      local t = tonumber(redis.call('HGET', K_NEXT, host) or 0)
      if t <= NOW then redis.call('HDEL', K_NEXT, host) end
    end
  end
end

-- `n` leases of `host` stopped fetching: their slots are free. Returns
-- whether the host was at the limit (so `refresh` must move it to ready).
local function free_slots(host, n)
  local c = redis.call('HINCRBY', K_HOSTLEASES, host, -n)
  if c <= 0 then redis.call('HDEL', K_HOSTLEASES, host) end
  return c < LIMIT and c + n >= LIMIT
end

-- `n` leases of `host` ended; `unfetched` of them were still fetching.
-- Returns whether the host's place may have changed (it was at the limit,
-- or holds no lease any more and may be idle): then refresh it.
local function end_leases(host, n, unfetched)
  local moved = unfetched > 0 and free_slots(host, unfetched)
  local c = redis.call('HINCRBY', K_HELD, host, -n)
  if c <= 0 then
    redis.call('HDEL', K_HELD, host)
    moved = true
  end
  return moved
end

-- Lease record `d` ended (ack, release, expiry). Returns whether the
-- caller must refresh d.h.
local function end_lease(d)
  return end_leases(d.h, 1, d.f and 0 or 1)
end

-- New work was queued for `host`: it belongs in ready (or full) unless it
-- is there already.
local function after_push(host)
  if redis.call('ZSCORE', K_READY, host) then return end
  if redis.call('SISMEMBER', K_FULL, host) == 1 then return end
  refresh(host)
end

-- A lease record: h = host, w = worker, r = request JSON, t = start,
-- f = true once fetched.
local function decode(v)
  local a = string.find(v, '\t', 2, true)
  local b = string.find(v, '\t', a + 1, true)
  local c = string.find(v, '\t', b + 1, true)
  return { f = string.byte(v, 1) == 49, t = string.sub(v, 2, a - 1),
    w = string.sub(v, a + 1, b - 1), h = string.sub(v, b + 1, c - 1),
    r = string.sub(v, c + 1) }
end

-- Forget lease `id`; returns its record or nil when it is not outstanding.
local function take_lease(id)
  local v = redis.call('HGET', K_LEASE, id)
  redis.call('ZREM', K_LEASES, id)
  if not v then return nil end
  redis.call('HDEL', K_LEASE, id)
  return decode(v)
end

-- Lease `id`'s fetch is over: its host slot is free while the lease stays
-- outstanding. Idempotent; false when the lease is not outstanding.
local function mark_fetched(id)
  local v = redis.call('HGET', K_LEASE, id)
  if not v then return false end
  if string.byte(v, 1) == 48 then
    redis.call('HSET', K_LEASE, id, '1' .. string.sub(v, 2))
    local d = decode(v)
    if free_slots(d.h, 1) then refresh(d.h) end
  end
  return true
end

-- Leases whose expiry has passed go back to the head of their host queue.
local function reclaim()
  local ids = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', NOW, 'LIMIT', 0, 1000)
  local n = 0
  for _, id in ipairs(ids) do
    local d = take_lease(id)
    if d then
      redis.call('LPUSH', qkey(d.h), d.r)
      redis.call('INCR', K_QUEUED)
      end_lease(d)
      refresh(d.h)
      n = n + 1
    end
  end
  if n > 0 then redis.call('HINCRBY', K_COUNTERS, 'reclaimed', n) end
  return n
end

-- URLs ever queued: the exact set's size, or (Bloom) the push counter.
local function seen_count()
  local n = redis.call('SCARD', K_SEEN)
  if n == 0 then n = tonumber(redis.call('GET', K_PUSHED) or 0) end
  return n
end

local function finished()
  return tonumber(redis.call('GET', K_QUEUED) or 0) <= 0
    and redis.call('ZCARD', K_LEASES) == 0
end

local function wake()
  if WOKE then redis.call('PUBLISH', CHANNEL, '1') end
end

for id in string.gmatch(ARGV[2], '%d+') do mark_fetched(id) end
"#;

/// The pushes of several pages at once. ARGV[3] the seen-set: `''` for the
/// exact set, or `'M K'` for a Bloom filter of M bits and K bits per URL;
/// ARGV[4] the number of pushes G; then G pairs (requests, split); then
/// every push's requests as triples of fingerprint (Bloom: `'A B'`, the
/// bits being A + i·B mod M), host, request JSON. Returns, per push, how
/// many were new and how many of its first `split`.
///
/// The seen-set is asked about every request of the call at once (one
/// `SMISMEMBER`, or one `BITFIELD` reading every filter bit) and told
/// about the new ones at once (one `SADD`, or one `BITFIELD` write): two
/// Redis commands per call, however many requests it carries. A request
/// whose fingerprint comes twice in one call is new only the first time.
const PUSH: &str = r#"
local M, K
if ARGV[3] ~= '' then
  local sp = string.find(ARGV[3], ' ', 1, true)
  M = tonumber(string.sub(ARGV[3], 1, sp - 1))
  K = tonumber(string.sub(ARGV[3], sp + 1))
end
local K_BLOOM = P .. 'bloom'
local BLOOM_OPS = 1000
local groups = tonumber(ARGV[4])
local first_req = 5 + 2 * groups
local entries = {}
for i = first_req, #ARGV, 3 do entries[#entries + 1] = ARGV[i] end
-- fresh[j]: entry j was not in the seen-set before this call.
local fresh = {}
if #entries > 0 then
  if not M then
    local known = redis.call('SMISMEMBER', K_SEEN, unpack(entries))
    for j = 1, #entries do fresh[j] = known[j] == 0 end
  else
    local get, bits, got = {}, {}, {}
    -- One BITFIELD_RO per BLOOM_OPS bits (Lua's unpack has a limit).
    local function read()
      if #get == 0 then return end
      for _, v in ipairs(redis.call('BITFIELD_RO', K_BLOOM, unpack(get))) do got[#got + 1] = v end
      get = {}
    end
    for j, entry in ipairs(entries) do
      local sp = string.find(entry, ' ', 1, true)
      local a = tonumber(string.sub(entry, 1, sp - 1))
      local b = tonumber(string.sub(entry, sp + 1))
      local mine = {}
      for i = 0, K - 1 do
        local bit = string.format('%.0f', (a + i * b) % M)
        mine[#mine + 1] = bit
        get[#get + 1] = 'GET'; get[#get + 1] = 'u1'; get[#get + 1] = bit
      end
      bits[j] = mine
      if #get >= BLOOM_OPS * 3 then read() end
    end
    read()
    for j = 1, #entries do
      fresh[j] = false
      for i = (j - 1) * K + 1, j * K do
        if got[i] == 0 then fresh[j] = true break end
      end
    end
    entries = bits
  end
end
local out = {}
local total = 0
local queues = {}
local added_entries = {}
local here = {}
local i, j = first_req, 1
for g = 0, groups - 1 do
  local count = tonumber(ARGV[5 + 2 * g])
  local split = tonumber(ARGV[6 + 2 * g])
  local added, first = 0, 0
  for n = 0, count - 1 do
    local fp = ARGV[i]
    if fresh[j] and not here[fp] then
      here[fp] = true
      added_entries[#added_entries + 1] = entries[j]
      if n < split then first = first + 1 end
      local host = ARGV[i + 1]
      local q = queues[host]
      if not q then
        q = {}
        queues[host] = q
      end
      q[#q + 1] = ARGV[i + 2]
      added = added + 1
    end
    i = i + 3
    j = j + 1
  end
  out[#out + 1] = added
  out[#out + 1] = first
  total = total + added
end
if total > 0 then
  if not M then
    redis.call('SADD', K_SEEN, unpack(added_entries))
  else
    local set = {}
    for _, mine in ipairs(added_entries) do
      for _, bit in ipairs(mine) do
        set[#set + 1] = 'SET'; set[#set + 1] = 'u1'; set[#set + 1] = bit; set[#set + 1] = 1
      end
      if #set >= BLOOM_OPS * 4 then
        redis.call('BITFIELD', K_BLOOM, unpack(set))
        set = {}
      end
    end
    if #set > 0 then redis.call('BITFIELD', K_BLOOM, unpack(set)) end
  end
  redis.call('INCRBY', K_QUEUED, total)
  redis.call('INCRBY', K_PUSHED, total)
  for host, q in pairs(queues) do
    redis.call('RPUSH', qkey(host), unpack(q))
    redis.call('SADD', K_ACTIVE, host)
    after_push(host)
  end
end
wake()
return out
"#;

/// ARGV[3] max, ARGV[4] host delay (µs), ARGV[5] lease timeout (µs),
/// ARGV[6] worker id. Returns `{id, host, request JSON}` triples.
///
/// Due hosts are taken oldest next-allowed time first (least recently
/// leased first); `max` is shared out one per host per round, as far as
/// each host's free slots go (one per host with a host delay); each host's
/// share is popped at once, and the leases are recorded with one command
/// per kind.
const LEASE: &str = r#"
reclaim()
local max = tonumber(ARGV[3])
local delay = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local worker = ARGV[6]
local start = string.format('%.0f', NOW)
local out = {}
local hosts = redis.call('ZRANGEBYSCORE', K_READY, '-inf', NOW, 'LIMIT', 0, max)
if #hosts > 0 then
  local counts = redis.call('HMGET', K_HOSTLEASES, unpack(hosts))
  local room, share = {}, {}
  for h = 1, #hosts do
    counts[h] = tonumber(counts[h] or 0)
    room[h] = LIMIT - counts[h]
    if delay > 0 and room[h] > 1 then room[h] = 1 end
    share[h] = 0
  end
  local left, more = max, true
  while left > 0 and more do
    more = false
    for h = 1, #hosts do
      if left > 0 and share[h] < room[h] then
        share[h] = share[h] + 1
        left = left - 1
        more = true
      end
    end
  end
  local leased = {}
  for h, host in ipairs(hosts) do
    if share[h] > 0 then
      local got = redis.call('LPOP', qkey(host), share[h]) or {}
      local n = #got
      if n > 0 then
        redis.call('HINCRBY', K_HOSTLEASES, host, n)
        redis.call('HINCRBY', K_HELD, host, n)
        for _, req in ipairs(got) do leased[#leased + 1] = { host, req } end
        if delay > 0 then redis.call('HSET', K_NEXT, host, NOW + delay) end
      end
      if n < share[h] or counts[h] + n >= LIMIT then
        refresh(host)
      elseif delay > 0 then
        redis.call('ZADD', K_READY, NOW + delay, host)
      end
    elseif room[h] <= 0 then
      refresh(host)
    end
  end
  if #leased > 0 then
    local last = redis.call('INCRBY', K_SEQ, #leased)
    redis.call('DECRBY', K_QUEUED, #leased)
    local z, records = {}, {}
    for j, l in ipairs(leased) do
      local id = last - #leased + j
      z[#z + 1] = NOW + ttl
      z[#z + 1] = id
      records[#records + 1] = id
      records[#records + 1] = '0' .. start .. '\t' .. worker .. '\t' .. l[1] .. '\t' .. l[2]
      out[#out + 1] = { id, l[1], l[2] }
    end
    redis.call('ZADD', K_LEASES, unpack(z))
    redis.call('HSET', K_LEASE, unpack(records))
  end
end
wake()
return out
"#;

/// ARGV[3] lease id. Returns 1, or 0 when the lease is not outstanding.
const ACK: &str = r#"
local d = take_lease(ARGV[3])
if not d then return 0 end
if end_lease(d) then refresh(d.h) end
if finished() then WOKE = true end
wake()
return 1
"#;

/// ARGV[3] lease id. Returns 1, or 0 when the lease is not outstanding.
const RELEASE: &str = r#"
local d = take_lease(ARGV[3])
if not d then return 0 end
redis.call('LPUSH', qkey(d.h), d.r)
redis.call('INCR', K_QUEUED)
end_lease(d)
refresh(d.h)
wake()
return 1
"#;

/// Only the prelude's work: marks the leases of ARGV[2] fetched (sent when
/// no other call carried them within a few milliseconds).
const FLUSH: &str = r#"
wake()
return 1
"#;

/// ARGV[3] worker id, ARGV[4] `1` to store ARGV[5] as the worker's
/// checkpoint, ARGV[6..] lease ids. Acks every outstanding one and returns
/// the ids that were not outstanding.
const ACK_BATCH: &str = r#"
local unknown = {}
local ids = {}
for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids > 0 then
  local records = redis.call('HMGET', K_LEASE, unpack(ids))
  redis.call('ZREM', K_LEASES, unpack(ids))
  local gone, ended, unfetched = {}, {}, {}
  for i, v in ipairs(records) do
    if v then
      gone[#gone + 1] = ids[i]
      local d = decode(v)
      ended[d.h] = (ended[d.h] or 0) + 1
      if not d.f then unfetched[d.h] = (unfetched[d.h] or 0) + 1 end
    else
      unknown[#unknown + 1] = tonumber(ids[i])
    end
  end
  if #gone > 0 then redis.call('HDEL', K_LEASE, unpack(gone)) end
  for host, n in pairs(ended) do
    if end_leases(host, n, unfetched[host] or 0) then refresh(host) end
  end
end
if ARGV[4] == '1' then redis.call('HSET', wkey(ARGV[3]), 'checkpoint', ARGV[5]) end
if finished() then WOKE = true end
wake()
return unknown
"#;

/// ARGV[3] host, ARGV[4] delay (µs): next-allowed = max(current, now + delay).
const DEFER: &str = r#"
local host = ARGV[3]
local untl = NOW + tonumber(ARGV[4])
local cur = tonumber(redis.call('HGET', K_NEXT, host) or 0)
if untl > cur then
  redis.call('HSET', K_NEXT, host, untl)
  if redis.call('ZSCORE', K_READY, host) then
    redis.call('ZADD', K_READY, untl, host)
  end
end
return 1
"#;

/// ARGV[3] worker id, ARGV[4] lease timeout (µs), ARGV[5..] the lease ids
/// the worker holds. Extends those that are still outstanding, marks the
/// worker alive, and returns the ids that are gone (reclaimed).
const HEARTBEAT: &str = r#"
local worker = ARGV[3]
local ttl = tonumber(ARGV[4])
local gone = {}
for i = 5, #ARGV do
  if redis.call('ZSCORE', K_LEASES, ARGV[i]) then
    redis.call('ZADD', K_LEASES, 'XX', NOW + ttl, ARGV[i])
  else
    gone[#gone + 1] = tonumber(ARGV[i])
  end
end
redis.call('ZADD', K_WORKERS, NOW, worker)
redis.call('HSETNX', wkey(worker), 'started', NOW)
redis.call('HSET', wkey(worker), 'seen', NOW)
return gone
"#;

/// Reclaims expired leases; returns `{1 when nothing is queued or leased,
/// leases ever handed out, requests ever queued}`: the two counters let a
/// sharded crawl see that no shard changed between two passes.
const IS_FINISHED: &str = r#"
reclaim()
wake()
return { finished() and 1 or 0, tonumber(redis.call('GET', K_SEQ) or 0),
  tonumber(redis.call('GET', K_PUSHED) or 0) }
"#;

/// `{queued, leased, seen, hosts}` in one consistent snapshot.
const STATS: &str = r#"
return { tonumber(redis.call('GET', K_QUEUED) or 0), redis.call('ZCARD', K_LEASES),
  seen_count(), redis.call('SCARD', K_ACTIVE) }
"#;

/// Microseconds until a ready host becomes due or a lease expires, whichever
/// is first (0 if one is due now); -1 when neither exists.
const NEXT_DUE: &str = r#"
local best = -1
local r = redis.call('ZRANGE', K_READY, 0, 0, 'WITHSCORES')
if #r > 0 then best = math.max(0, tonumber(r[2]) - NOW) end
local e = redis.call('ZRANGE', K_LEASES, 0, 0, 'WITHSCORES')
if #e > 0 then
  local d = math.max(0, tonumber(e[2]) - NOW)
  if best < 0 or d < best then best = d end
end
return best
"#;

/// ARGV[3] liveness window (µs). Returns `{scalars, workers, leases}`:
/// see `RedisFrontier::status` for the order of the scalars; `workers` are
/// the live workers registered under this prefix, `leases` the
/// `{worker, count}` of the leases outstanding here.
const STATUS: &str = r#"
local since = NOW - tonumber(ARGV[3])
local counters = redis.call('HMGET', K_COUNTERS, 'pages', 'errors', 'reclaimed')
local per = {}
for _, v in ipairs(redis.call('HVALS', K_LEASE)) do
  local w = decode(v).w
  per[w] = (per[w] or 0) + 1
end
local leases = {}
for w, n in pairs(per) do leases[#leases + 1] = { w, n } end
local workers = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_WORKERS, since, '+inf')) do
  local h = redis.call('HMGET', wkey(id), 'started', 'seen', 'pages', 'errors')
  workers[#workers + 1] = { id, tonumber(h[1] or 0), tonumber(h[2] or 0),
    tonumber(h[3] or 0), tonumber(h[4] or 0) }
end
local scalars = {
  NOW,
  tonumber(redis.call('GET', K_QUEUED) or 0),
  redis.call('ZCARD', K_LEASES),
  seen_count(),
  redis.call('SCARD', K_ACTIVE),
  redis.call('ZCARD', K_READY),
  redis.call('SCARD', K_FULL),
  redis.call('ZCOUNT', K_LEASES, '-inf', NOW),
  tonumber(counters[3] or 0),
  tonumber(counters[1] or 0),
  tonumber(counters[2] or 0),
  redis.call('ZCOUNT', K_WORKERS, '-inf', '(' .. string.format('%.0f', since)),
}
return { scalars, workers, leases }
"#;

/// KEYS[1] the crawl's home prefix; ARGV[1] worker id, ARGV[2] this
/// process's token, ARGV[3] pages and ARGV[4] errors it has done in all.
/// Adds the difference to the last totals this process reported to the
/// worker's and the crawl's counters, so a report that timed out and
/// still ran, or arrives late, is not counted twice. Without the prelude.
const RECORD: &str = r#"
local w = KEYS[1] .. 'worker:' .. ARGV[1]
local field = 'run:' .. ARGV[2]
local pages, errors = tonumber(ARGV[3]), tonumber(ARGV[4])
local prev = redis.call('HGET', w, field)
local dp, de = pages, errors
if prev then
  local sp = string.find(prev, ' ', 1, true)
  dp = pages - tonumber(string.sub(prev, 1, sp - 1))
  de = errors - tonumber(string.sub(prev, sp + 1))
end
if dp < 0 or de < 0 or (dp == 0 and de == 0) then return 0 end
redis.call('HSET', w, field, ARGV[3] .. ' ' .. ARGV[4])
for _, key in ipairs({ w, KEYS[1] .. 'counters' }) do
  redis.call('HINCRBY', key, 'pages', dp)
  redis.call('HINCRBY', key, 'errors', de)
end
return 1
"#;

/// The compiled (hashed) scripts of one frontier.
pub(super) struct Scripts {
    pub push: Script,
    pub lease: Script,
    pub ack: Script,
    pub ack_batch: Script,
    pub flush: Script,
    pub release: Script,
    pub defer: Script,
    pub heartbeat: Script,
    pub is_finished: Script,
    pub stats: Script,
    pub next_due: Script,
    pub status: Script,
    pub record: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            push: script(PUSH),
            lease: script(LEASE),
            ack: script(ACK),
            ack_batch: script(ACK_BATCH),
            flush: script(FLUSH),
            release: script(RELEASE),
            defer: script(DEFER),
            heartbeat: script(HEARTBEAT),
            is_finished: script(IS_FINISHED),
            stats: script(STATS),
            next_due: script(NEXT_DUE),
            status: script(STATUS),
            record: Script::new(RECORD),
        }
    }
}
