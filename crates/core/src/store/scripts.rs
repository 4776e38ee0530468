//! Lua scripts. Each touches the keys of one shard only (one hash tag), so they run unchanged
//! on Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

/// Ordered inserts and cancels for one shard, in one atomic step. A cancel of a scheduled job
/// removes it from the due index; of a job whose fire a scheduler has claimed, it answers
/// `dispatched` (that fire goes out; a recurring job gets no further fire).
///
/// KEYS: due, inflight, then one job key per op.
/// ARGV: ttl ms of cancelled records, wake channel, shard index, then five per op:
/// kind (`i` insert | `c` cancel), job id, fingerprint, record, due ms (empty for cancels).
/// Returns one status per op.
pub(crate) static APPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due, inflight = KEYS[1], KEYS[2]
local ttl, channel, shard = ARGV[1], ARGV[2], ARGV[3]
local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
local before = first[2] and tonumber(first[2]) or nil
local lowest = nil
local out = {}
for i = 3, #KEYS do
  local a = 3 + (i - 3) * 5
  local kind, id, fp, rec, score = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local key = KEYS[i]
  if kind == 'i' then
    local cur = redis.call('GETRANGE', key, 0, 7)
    if cur == fp then
      out[#out + 1] = 'duplicate'
    else
      redis.call('SET', key, rec)
      redis.call('ZADD', due, score, id)
      if cur == '' then out[#out + 1] = 'created' else out[#out + 1] = 'updated' end
      local s = tonumber(score)
      if lowest == nil or s < lowest then lowest = s end
    end
  else
    local st = redis.call('GETRANGE', key, 8, 8)
    if st == '' then
      out[#out + 1] = 'not_found'
    elseif st == 'c' then
      out[#out + 1] = 'already_cancelled'
    elseif st == 's' or st == 'S' then
      redis.call('ZREM', due, id)
      redis.call('SETRANGE', key, 8, 'c')
      redis.call('PEXPIRE', key, ttl)
      out[#out + 1] = 'cancelled'
    elseif st == 'F' then
      -- The fire in flight goes out; the ack sees 'c' and schedules nothing after it.
      redis.call('SETRANGE', key, 8, 'c')
      out[#out + 1] = 'dispatched'
    elseif st == 'f' then
      out[#out + 1] = 'dispatched'
    else
      out[#out + 1] = 'finished'
    end
  end
end
if lowest and (before == nil or lowest < before) then
  redis.call('PUBLISH', channel, shard .. ':' .. string.format('%d', lowest))
end
return out
"#,
    )
});

/// Claims up to N due jobs of one shard, after returning expired leases to the due index.
///
/// KEYS: due, inflight, runs. ARGV: now ms, limit, lease deadline ms, job key prefix, ttl ms.
/// In-flight members are `<due score>|<job id>`, so a reclaim restores the exact score.
/// Returns `{reclaimed, id, score, record, runs, id, score, record, runs, ...}`.
pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due, inflight, runs = KEYS[1], KEYS[2], KEYS[3]
local now, limit, deadline, prefix, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local reclaimed = 0
local expired = redis.call('ZRANGEBYSCORE', inflight, '-inf', now, 'LIMIT', 0, 1000)
for _, m in ipairs(expired) do
  redis.call('ZREM', inflight, m)
  local sep = string.find(m, '|', 1, true)
  if sep then
    local score, id = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
    local key = prefix .. id
    local st = redis.call('GETRANGE', key, 8, 8)
    if st == 'f' or st == 'F' then
      redis.call('ZADD', due, 'NX', score, id)
      if st == 'f' then redis.call('SETRANGE', key, 8, 's') else redis.call('SETRANGE', key, 8, 'S') end
      reclaimed = reclaimed + 1
    elseif st == 'c' then
      redis.call('PEXPIRE', key, ttl)
      redis.call('HDEL', runs, id)
    end
  end
end
local out = {reclaimed}
local items = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #items, 2 do
  local id, score = items[i], items[i + 1]
  redis.call('ZREM', due, id)
  local key = prefix .. id
  local rec = redis.call('GET', key)
  if rec then
    local st = string.sub(rec, 9, 9)
    if st == 's' or st == 'S' then
      if st == 's' then redis.call('SETRANGE', key, 8, 'f') else redis.call('SETRANGE', key, 8, 'F') end
      redis.call('ZADD', inflight, deadline, score .. '|' .. id)
      out[#out + 1] = id
      out[#out + 1] = score
      out[#out + 1] = rec
      out[#out + 1] = redis.call('HGET', runs, id) or '0'
    end
  end
end
return out
"#,
    )
});

/// Acknowledges fires that Kafka accepted, for one shard.
///
/// KEYS: due, inflight, runs. ARGV: ttl ms, job key prefix, wake channel, shard index, then four
/// per job: id, claimed score (as the claim returned it), fires produced, next score or ''.
/// One-shot (`f`) → dispatched with a TTL; recurring (`F`) → next score in the due index, or
/// dispatched when none is left; cancelled while firing (`c`) → expires. Any other state means
/// the job was updated or reclaimed meanwhile: the ack changes nothing but the lease.
/// Returns one status per job: `done`, `next`, `cancelled` or `stale`.
pub(crate) static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due, inflight, runs = KEYS[1], KEYS[2], KEYS[3]
local ttl, prefix, channel, shard = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
local before = first[2] and tonumber(first[2]) or nil
local lowest = nil
local out = {}
for a = 5, #ARGV, 4 do
  local id, score, fired, nxt = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  redis.call('ZREM', inflight, score .. '|' .. id)
  local key = prefix .. id
  local st = redis.call('GETRANGE', key, 8, 8)
  if st == 'f' and nxt ~= '' then
    -- A one-shot the scheduler could not fire yet (its clock stepped back): due again.
    redis.call('ZADD', due, nxt, id)
    redis.call('SETRANGE', key, 8, 's')
    out[#out + 1] = 'next'
  elseif st == 'f' then
    redis.call('SETRANGE', key, 8, 'd')
    redis.call('PEXPIRE', key, ttl)
    out[#out + 1] = 'done'
  elseif st == 'F' then
    if fired > 0 then redis.call('HINCRBY', runs, id, fired) end
    if nxt ~= '' then
      redis.call('ZADD', due, nxt, id)
      redis.call('SETRANGE', key, 8, 'S')
      local s = tonumber(nxt)
      if lowest == nil or s < lowest then lowest = s end
      out[#out + 1] = 'next'
    else
      redis.call('SETRANGE', key, 8, 'd')
      redis.call('PEXPIRE', key, ttl)
      redis.call('HDEL', runs, id)
      out[#out + 1] = 'done'
    end
  elseif st == 'c' then
    redis.call('PEXPIRE', key, ttl)
    redis.call('HDEL', runs, id)
    out[#out + 1] = 'cancelled'
  else
    out[#out + 1] = 'stale'
  end
end
if lowest and (before == nil or lowest < before) then
  redis.call('PUBLISH', channel, shard .. ':' .. string.format('%d', lowest))
end
return out
"#,
    )
});

/// Every script, for loading after a `NOSCRIPT` (e.g. a Redis restart emptied its cache).
pub(crate) fn all() -> [&'static Script; 3] {
    [&APPLY, &CLAIM, &ACK]
}
