//! The Lua scripts that keep the room's shared state in Redis, each one atomic.
//!
//! Keys of room R (`{R}` is a hash tag, so a Redis Cluster keeps them on one node):
//! - `chat:{R}:log`: the stream of events (entries `o k t a b c`, see `event.rs`), trimmed to
//!   about [`super::LOG_MAXLEN`] entries.
//! - `chat:{R}:names`: lowercased name -> server id: the cluster-wide claim on a name.
//! - `chat:{R}:who`: lowercased name -> `server \t M \t Name` (a member) or
//!   `server \t W \t Name \t addr` (a waiting join): the snapshot a joining server starts from.
//! - `chat:{R}:servers`: sorted set of live server ids, scored by their last heartbeat (Redis's
//!   own clock, ms), so no two servers' clocks are ever compared.
//! - `chat:{R}:seq`: server id -> the sequence number of the last event it appended, so a batch
//!   retried after a lost reply is never appended twice.
//! - `chat:{R}:members`: lowercased name -> the latest shared record of that name,
//!   `stamp \t T \t Name \t hash \t approved-at \t approved-by` (a remembered member) or
//!   `stamp \t F \t Name \t` (forgotten: its token is void), written by the server that made
//!   the change; a record with an earlier stamp never replaces a later one. A forget's record
//!   is dropped once older than `ClusterConfig::keep_forgets` ([`PRUNE_FORGETS`]).
//! - `chat:{R}:bans`: range -> `stamp \t B \t range \t until \t by \t reason` or
//!   `stamp \t O \t range \t` (lifted), the same way.
//!
//! Every write of a server first checks, in the same script, that its id is in `servers`: a
//! server the others declared dead cannot write a line or claim a name until it rejoins under a
//! new id, and a request made before a cut-off is sent under the id of the epoch it was made in
//! (`name`, then `name~2`, ...), so Redis refuses it even when it reaches the writer after the
//! rejoin (the fence of `writer.rs`).

/// Shared by [`heartbeat`]: reaps server ARGV id `id` (already removed from `servers`):
/// `LEAVE name quit` for each of its members and waiting joins, its names freed, then `G`.
/// KEYS: servers, names, who, seq, log. `ARGV[4]`: the log's MAXLEN.
const REAP: &str = r#"
local function reap(id, now)
  local who = redis.call('HGETALL', KEYS[3])
  for i = 1, #who, 2 do
    local v = who[i + 1]
    local owner, state, name = string.match(v, '^([^\t]*)\t([MW])\t([^\t]*)')
    if owner == id then
      redis.call('HDEL', KEYS[3], who[i])
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'o', id, 'k', 'L', 't', now,
        'a', name, 'b', 'quit', 'c', '')
    end
  end
  local names = redis.call('HGETALL', KEYS[2])
  for i = 1, #names, 2 do
    if names[i + 1] == id then
      redis.call('HDEL', KEYS[2], names[i])
    end
  end
  redis.call('HDEL', KEYS[4], id)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'o', id, 'k', 'G', 't', now,
    'a', id, 'b', '', 'c', '')
end
"#;

/// The heartbeat, the reaper and the voluntary leave, in one script.
/// KEYS: servers, names, who, seq, log. ARGV: my id, mode (`join`, `beat`, `leave`), the
/// interval in ms, the log's MAXLEN. Returns -1 when a `beat` finds this server declared dead,
/// -2 when it finds the room's log gone (Redis lost its data), -3 when a `join` finds a live
/// server with this id, else how many dead servers it reaped. A `join` writes `U` to the log.
pub fn heartbeat() -> String {
    format!(
        "{REAP}{}",
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, mode = ARGV[1], ARGV[2]
if mode == 'leave' then
  if redis.call('ZREM', KEYS[1], me) == 1 then reap(me, now) end
  return 0
end
if mode == 'beat' and not redis.call('ZSCORE', KEYS[1], me) then
  -- The log is gone too: Redis lost the room's data (restarted empty, or flushed).
  if redis.call('EXISTS', KEYS[5]) == 0 then return -2 end
  return -1
end
if mode == 'join' then
  local score = redis.call('ZSCORE', KEYS[1], me)
  if score and tonumber(score) > now - tonumber(ARGV[3]) then
    -- A live server has this name (or this one's previous run, until it times out).
    return -3
  end
  if score then
    redis.call('ZREM', KEYS[1], me)
    reap(me, now)
  end
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'o', me, 'k', 'U', 't', now,
    'a', me, 'b', '', 'c', '')
end
redis.call('ZADD', KEYS[1], now, me)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
local n = 0
for _, id in ipairs(dead) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    reap(id, now)
    n = n + 1
  end
end
return n
"#
    )
}

/// Appends a batch of events. KEYS: servers, who, seq, log, names, members, bans. ARGV: my id,
/// the sequence number of the batch's first event, the log's MAXLEN, then five per event: kind,
/// ms, a, b, c. A `LEAVE` or a decided join frees its name in the same step, so nobody who read
/// the event can find the name still held; a handover (`V`) moves the member's `who` entry to
/// the server it went to. A shared record (`T`, `F`: a member's; `B`, `O`: a
/// ban's) is also kept in the `members`/`bans` hash unless the hash has a later one (its stamp
/// is `b`). Returns -1 when this server id is not in the room (declared dead, or an id of an
/// epoch before a cut-off): nothing is appended; else 1.
pub const PUBLISH: &str = r#"
local me = ARGV[1]
if not redis.call('ZSCORE', KEYS[1], me) then return -1 end
-- Keeps a shared record unless a later one is kept: false when it lost (then it is not
-- appended either, so no server ever reads a record older than one it may have).
local function keep(key, field, stamp, value)
  local v = redis.call('HGET', key, field)
  if v and tonumber(string.match(v, '^(%d+)') or '0') > stamp then return false end
  redis.call('HSET', key, field, value)
  return true
end
local last = tonumber(redis.call('HGET', KEYS[3], me) or '0')
local seq = tonumber(ARGV[2])
local function del_mine(key)
  local v = redis.call('HGET', KEYS[2], key)
  if v and string.sub(v, 1, #me + 1) == me .. '\t' then redis.call('HDEL', KEYS[2], key) end
end
for i = 4, #ARGV, 5 do
  if seq > last then
    local k, a, b = ARGV[i], ARGV[i + 2], ARGV[i + 3]
    local append = true
    if k == 'J' then
      redis.call('HSET', KEYS[2], string.lower(a), me .. '\tM\t' .. a)
    elseif k == 'R' then
      redis.call('HSET', KEYS[2], string.lower(a), me .. '\tW\t' .. a .. '\t' .. b)
    elseif k == 'L' or k == 'D' then
      del_mine(string.lower(a))
      if redis.call('HGET', KEYS[5], string.lower(a)) == me then
        redis.call('HDEL', KEYS[5], string.lower(a))
      end
    elseif k == 'N' then
      del_mine(string.lower(a))
      redis.call('HSET', KEYS[2], string.lower(b), me .. '\tM\t' .. b)
    elseif k == 'V' then
      -- A member handed over to server b (a cross-server takeover): b's member now.
      del_mine(string.lower(a))
      redis.call('HSET', KEYS[2], string.lower(a), b .. '\tM\t' .. a)
    elseif k == 'T' or k == 'F' then
      append = keep(KEYS[6], string.lower(a), tonumber(b) or 0,
        b .. '\t' .. k .. '\t' .. a .. '\t' .. ARGV[i + 4])
    elseif k == 'B' or k == 'O' then
      append = keep(KEYS[7], a, tonumber(b) or 0, b .. '\t' .. k .. '\t' .. a .. '\t' .. ARGV[i + 4])
    end
    if append then redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'o', me, 'k', k, 't', ARGV[i + 1],
      'a', a, 'b', b, 'c', ARGV[i + 4]) end
  end
  seq = seq + 1
end
if seq - 1 > last then redis.call('HSET', KEYS[3], me, seq - 1) end
return 1
"#;

/// Claims a name, and frees another of this server's in the same step (a rename).
/// KEYS: servers, names, log. ARGV: my id, lowercased name, lowercased name to free or ''.
/// Returns {-1 (declared dead), 0 (held by another server) or 1 (now this server's), the log's
/// last id}: a newcomer is admitted once its server has read the log that far, so it sees the
/// room as it was when it got its name.
pub const CLAIM: &str = r#"
local me = ARGV[1]
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local tip = '0-0'
if #last > 0 then tip = last[1][1] end
if not redis.call('ZSCORE', KEYS[1], me) then return {-1, tip} end
local v = redis.call('HGET', KEYS[2], ARGV[2])
if v and v ~= me then return {0, tip} end
redis.call('HSET', KEYS[2], ARGV[2], me)
if ARGV[3] ~= '' and ARGV[3] ~= ARGV[2] and redis.call('HGET', KEYS[2], ARGV[3]) == me then
  redis.call('HDEL', KEYS[2], ARGV[3])
end
return {1, tip}
"#;

/// Frees a name if this server holds it. KEYS: servers, names. ARGV: my id, lowercased name.
/// Returns -1 when this server was declared dead (nothing done), else 1.
pub const RELEASE: &str = r#"
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
"#;

/// The room as it is now, atomically with the log's position. KEYS: who, log, members, bans.
/// Returns {last entry id or '0-0', the `who` hash flattened, the values of `members` and of
/// `bans` (each `stamp \t kind \t a \t c`: the shared record as its last event wrote it)}.
pub const SNAPSHOT: &str = r#"
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
return {id, redis.call('HGETALL', KEYS[1]), redis.call('HVALS', KEYS[3]),
  redis.call('HVALS', KEYS[4])}
"#;

/// Drops the forget records (tombstones, `stamp \t F \t Name \t`) stamped before `ARGV[1]` (ms)
/// from the `members` hash; a remembered member's record is never touched. KEYS: members.
/// Returns how many went. Atomic, so a record written meanwhile is never lost.
pub const PRUNE_FORGETS: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  local stamp = string.match(all[i + 1], '^(%d+)\tF\t')
  if stamp and tonumber(stamp) < tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], all[i])
    n = n + 1
  end
end
return n
"#;
