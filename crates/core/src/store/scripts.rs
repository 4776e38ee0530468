//! Lua scripts. Each touches the keys of one shard only (one hash tag) and declares every key
//! it touches in KEYS, so on a Redis Cluster it runs on the node that owns the shard's slot,
//! and while that slot migrates the whole call is redirected or retried, never split.

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
    elseif st == 's' or st == 'S' or st == 'r' or st == 'R' then
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

/// Claims the due jobs of one shard that the caller read first (`Store::claim`), after
/// returning their expired leases to the due index. Every key it touches is declared, so on a
/// Redis Cluster a shard whose slot is migrating gets `ASK`/`TRYAGAIN` for the whole call,
/// never a half-applied one; each candidate is checked again here, since another scheduler
/// may have claimed or acked it since.
///
/// KEYS: due, inflight, runs, the job key of each expired lease, the job key of each candidate.
/// ARGV: now ms, lease deadline ms, ttl ms, number of expired leases, the expired in-flight
/// members (`<due score>|<job id>`, so a reclaim restores the exact score), the candidate ids.
/// Returns `{reclaimed, id, score, record, runs, id, score, record, runs, ...}`.
pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due, inflight, runs = KEYS[1], KEYS[2], KEYS[3]
local now, deadline, ttl, expired = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local reclaimed = 0
for i = 1, expired do
  local m, key = ARGV[4 + i], KEYS[3 + i]
  local lease = redis.call('ZSCORE', inflight, m)
  local sep = string.find(m, '|', 1, true)
  if lease and tonumber(lease) <= now and sep then
    redis.call('ZREM', inflight, m)
    local score, id = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
    local st = redis.call('GETRANGE', key, 8, 8)
    if st == 'f' or st == 'F' then
      redis.call('ZADD', due, 'NX', score, id)
      -- `r`/`R`: scheduled again after a lease expired; that fire may have gone out.
      if st == 'f' then redis.call('SETRANGE', key, 8, 'r') else redis.call('SETRANGE', key, 8, 'R') end
      reclaimed = reclaimed + 1
    elseif st == 'c' then
      redis.call('PEXPIRE', key, ttl)
      redis.call('HDEL', runs, id)
    end
  end
end
local out = {reclaimed}
for i = 5 + expired, #ARGV do
  local id, key = ARGV[i], KEYS[i - 1]
  local score = redis.call('ZSCORE', due, id)
  if score and tonumber(score) <= now then
    redis.call('ZREM', due, id)
    local rec = redis.call('GET', key)
    if rec then
      local st = string.sub(rec, 9, 9)
      if st == 's' or st == 'S' or st == 'r' or st == 'R' then
        if st == 's' or st == 'r' then redis.call('SETRANGE', key, 8, 'f') else redis.call('SETRANGE', key, 8, 'F') end
        redis.call('ZADD', inflight, deadline, score .. '|' .. id)
        out[#out + 1] = id
        out[#out + 1] = score
        out[#out + 1] = rec
        out[#out + 1] = redis.call('HGET', runs, id) or '0'
      end
    end
  end
end
return out
"#,
    )
});

/// Acknowledges fires that Kafka accepted, for one shard.
///
/// KEYS: due, inflight, runs, then the job key of each job. ARGV: ttl ms, wake channel, shard
/// index, then five per job: id, claimed score (as the claim returned it), the claim's lease
/// deadline, fires produced, next score or ''. An ack whose lease is no longer in the
/// in-flight set with that deadline is `stale` and changes nothing: the lease expired and
/// another scheduler reclaimed (and maybe claimed again) the job, which it now owns.
/// One-shot (`f`) → dispatched with a TTL; recurring (`F`) → next score in the due index, or
/// dispatched when none is left; cancelled while firing (`c`) → expires. Any other state means
/// the job was updated or reclaimed meanwhile: the ack changes nothing but the lease.
/// Returns one status per job: `done`, `next`, `cancelled` or `stale`.
pub(crate) static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due, inflight, runs = KEYS[1], KEYS[2], KEYS[3]
local ttl, channel, shard = ARGV[1], ARGV[2], ARGV[3]
local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
local before = first[2] and tonumber(first[2]) or nil
local lowest = nil
local out = {}
for a = 4, #ARGV, 5 do
  local id, score, lease = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local fired, nxt = tonumber(ARGV[a + 3]), ARGV[a + 4]
  local key = KEYS[4 + (a - 4) / 5]
  local member = score .. '|' .. id
  local held = redis.call('ZSCORE', inflight, member)
  local st = ''
  if held and tonumber(held) == lease then
    redis.call('ZREM', inflight, member)
    st = redis.call('GETRANGE', key, 8, 8)
  end
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
