//! The Lua scripts behind [`RedisFrontier`](super::RedisFrontier).
//!
//! Every state change of the frontier is one script, so it is atomic on the
//! server: two workers can never both enqueue or both lease one URL. Each
//! script is the shared [`PRELUDE`] (key names, the server clock, the host
//! bookkeeping helpers) followed by its own body, and is sent with EVALSHA
//! (falling back to EVAL + SCRIPT LOAD after a server restart emptied the
//! script cache).
//!
//! Calling convention: `KEYS[1]` is the crawl's key prefix `trawl:{NAME}:`;
//! every key a script touches is `KEYS[1] .. suffix`, so all of them share
//! the prefix's hash tag and therefore its Redis Cluster slot. `ARGV[1]` is
//! the per-host lease limit; the script's own arguments start at `ARGV[2]`.
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

-- A lease of `host` stopped fetching: its slot is free.
local function free_slot(host)
  local c = redis.call('HINCRBY', K_HOSTLEASES, host, -1)
  if c <= 0 then redis.call('HDEL', K_HOSTLEASES, host) end
end

-- Lease record `d` ended (ack, release, expiry); the caller refreshes d.h.
local function end_lease(d)
  if not d.f then free_slot(d.h) end
  local c = redis.call('HINCRBY', K_HELD, d.h, -1)
  if c <= 0 then redis.call('HDEL', K_HELD, d.h) end
end

-- Forget lease `id`; returns its record (h = host, w = worker, r = request
-- JSON, t = start, f = 1 once fetched) or nil when it is not outstanding.
local function take_lease(id)
  local v = redis.call('HGET', K_LEASE, id)
  redis.call('ZREM', K_LEASES, id)
  if not v then return nil end
  redis.call('HDEL', K_LEASE, id)
  return cjson.decode(v)
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

local function finished()
  return tonumber(redis.call('GET', K_QUEUED) or 0) <= 0
    and redis.call('ZCARD', K_LEASES) == 0
end

local function wake()
  if WOKE then redis.call('PUBLISH', CHANNEL, '1') end
end
"#;

/// ARGV[2..]: triples of fingerprint, host, request JSON. Returns how many
/// were new.
const PUSH: &str = r#"
local added = 0
local touched = {}
for i = 2, #ARGV, 3 do
  if redis.call('SADD', K_SEEN, ARGV[i]) == 1 then
    local host = ARGV[i + 1]
    redis.call('RPUSH', qkey(host), ARGV[i + 2])
    added = added + 1
    if not touched[host] then
      touched[host] = true
      redis.call('SADD', K_ACTIVE, host)
    end
  end
end
if added > 0 then
  redis.call('INCRBY', K_QUEUED, added)
  for host in pairs(touched) do refresh(host) end
end
wake()
return added
"#;

/// ARGV[2] max, ARGV[3] host delay (µs), ARGV[4] lease timeout (µs),
/// ARGV[5] worker id. Returns `{id, host, request JSON}` triples.
///
/// Due hosts are taken oldest next-allowed time first (least recently
/// leased first), one request per host per round; with no host delay a host
/// may serve several rounds of one call, up to the limit.
const LEASE: &str = r#"
reclaim()
local max = tonumber(ARGV[2])
local delay = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local worker = ARGV[5]
local out = {}
local hosts = redis.call('ZRANGEBYSCORE', K_READY, '-inf', NOW, 'LIMIT', 0, max)
while #out < max and #hosts > 0 do
  local again = {}
  for _, host in ipairs(hosts) do
    if #out >= max then break end
    local c = tonumber(redis.call('HGET', K_HOSTLEASES, host) or 0)
    local nxt = tonumber(redis.call('HGET', K_NEXT, host) or 0)
    if c < LIMIT and nxt <= NOW then
      local req = redis.call('LPOP', qkey(host))
      if req then
        local id = redis.call('INCR', K_SEQ)
        redis.call('HINCRBY', K_HOSTLEASES, host, 1)
        redis.call('HINCRBY', K_HELD, host, 1)
        redis.call('DECR', K_QUEUED)
        redis.call('HSET', K_NEXT, host, NOW + delay)
        redis.call('ZADD', K_LEASES, NOW + ttl, id)
        redis.call('HSET', K_LEASE, id, cjson.encode({
          h = host, w = worker, r = req, t = string.format('%.0f', NOW) }))
        out[#out + 1] = { id, host, req }
        if delay <= 0 then again[#again + 1] = host end
      end
    end
    refresh(host)
  end
  hosts = again
end
wake()
return out
"#;

/// ARGV[2] lease id. Returns 1, or 0 when the lease is not outstanding.
const ACK: &str = r#"
local d = take_lease(ARGV[2])
if not d then return 0 end
end_lease(d)
refresh(d.h)
if finished() then WOKE = true end
wake()
return 1
"#;

/// ARGV[2] lease id. Returns 1, or 0 when the lease is not outstanding.
const RELEASE: &str = r#"
local d = take_lease(ARGV[2])
if not d then return 0 end
redis.call('LPUSH', qkey(d.h), d.r)
redis.call('INCR', K_QUEUED)
end_lease(d)
refresh(d.h)
wake()
return 1
"#;

/// ARGV[2] lease id: its fetch is over, so its host slot is free while the
/// lease stays outstanding. Idempotent. Returns 0 when not outstanding.
const FETCHED: &str = r#"
local v = redis.call('HGET', K_LEASE, ARGV[2])
if not v then return 0 end
local d = cjson.decode(v)
if not d.f then
  d.f = 1
  redis.call('HSET', K_LEASE, ARGV[2], cjson.encode(d))
  free_slot(d.h)
  refresh(d.h)
end
wake()
return 1
"#;

/// ARGV[2] worker id, ARGV[3] `1` to store ARGV[4] as the worker's
/// checkpoint, ARGV[5..] lease ids. Acks every outstanding one and returns
/// the ids that were not outstanding.
const ACK_BATCH: &str = r#"
local unknown = {}
local touched = {}
for i = 5, #ARGV do
  local d = take_lease(ARGV[i])
  if d then
    end_lease(d)
    touched[d.h] = true
  else
    unknown[#unknown + 1] = tonumber(ARGV[i])
  end
end
for host in pairs(touched) do refresh(host) end
if ARGV[3] == '1' then redis.call('HSET', wkey(ARGV[2]), 'checkpoint', ARGV[4]) end
if finished() then WOKE = true end
wake()
return unknown
"#;

/// ARGV[2] host, ARGV[3] delay (µs): next-allowed = max(current, now + delay).
const DEFER: &str = r#"
local host = ARGV[2]
local untl = NOW + tonumber(ARGV[3])
local cur = tonumber(redis.call('HGET', K_NEXT, host) or 0)
if untl > cur then
  redis.call('HSET', K_NEXT, host, untl)
  if redis.call('ZSCORE', K_READY, host) then
    redis.call('ZADD', K_READY, untl, host)
  end
end
return 1
"#;

/// ARGV[2] worker id, ARGV[3] lease timeout (µs), ARGV[4..] the lease ids
/// the worker holds. Extends those that are still outstanding, marks the
/// worker alive, and returns the ids that are gone (reclaimed).
const HEARTBEAT: &str = r#"
local worker = ARGV[2]
local ttl = tonumber(ARGV[3])
local gone = {}
for i = 4, #ARGV do
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

/// Reclaims expired leases; returns 1 when nothing is queued or leased.
const IS_FINISHED: &str = r#"
reclaim()
wake()
if finished() then return 1 end
return 0
"#;

/// `{queued, leased, seen, hosts}` in one consistent snapshot.
const STATS: &str = r#"
return { tonumber(redis.call('GET', K_QUEUED) or 0), redis.call('ZCARD', K_LEASES),
  redis.call('SCARD', K_SEEN), redis.call('SCARD', K_ACTIVE) }
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

/// ARGV[2] liveness window (µs). Returns `{scalars, workers}`: see
/// `RedisFrontier::status` for the order.
const STATUS: &str = r#"
local since = NOW - tonumber(ARGV[2])
local counters = redis.call('HMGET', K_COUNTERS, 'pages', 'errors', 'reclaimed')
local per = {}
for _, v in ipairs(redis.call('HVALS', K_LEASE)) do
  local d = cjson.decode(v)
  per[d.w] = (per[d.w] or 0) + 1
end
local workers = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_WORKERS, since, '+inf')) do
  local h = redis.call('HMGET', wkey(id), 'started', 'seen', 'pages', 'errors')
  workers[#workers + 1] = { id, tonumber(h[1] or 0), tonumber(h[2] or 0),
    tonumber(h[3] or 0), tonumber(h[4] or 0), per[id] or 0 }
end
local scalars = {
  NOW,
  tonumber(redis.call('GET', K_QUEUED) or 0),
  redis.call('ZCARD', K_LEASES),
  redis.call('SCARD', K_SEEN),
  redis.call('SCARD', K_ACTIVE),
  redis.call('ZCARD', K_READY),
  redis.call('SCARD', K_FULL),
  redis.call('ZCOUNT', K_LEASES, '-inf', NOW),
  tonumber(counters[3] or 0),
  tonumber(counters[1] or 0),
  tonumber(counters[2] or 0),
  redis.call('ZCOUNT', K_WORKERS, '-inf', '(' .. string.format('%.0f', since)),
}
return { scalars, workers }
"#;

/// The compiled (hashed) scripts of one frontier.
pub(super) struct Scripts {
    pub push: Script,
    pub lease: Script,
    pub ack: Script,
    pub ack_batch: Script,
    pub fetched: Script,
    pub release: Script,
    pub defer: Script,
    pub heartbeat: Script,
    pub is_finished: Script,
    pub stats: Script,
    pub next_due: Script,
    pub status: Script,
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
            fetched: script(FETCHED),
            release: script(RELEASE),
            defer: script(DEFER),
            heartbeat: script(HEARTBEAT),
            is_finished: script(IS_FINISHED),
            stats: script(STATS),
            next_due: script(NEXT_DUE),
            status: script(STATUS),
        }
    }
}
