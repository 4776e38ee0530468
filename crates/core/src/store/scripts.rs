//! Lua scripts. Each touches the keys of one shard only (one hash tag), so they run unchanged
//! on Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

/// Ordered inserts and cancels for one shard, in one atomic step.
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
    local cur = redis.call('GETRANGE', key, 0, 15)
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
    local st = redis.call('GETRANGE', key, 16, 16)
    if st == '' then
      out[#out + 1] = 'not_found'
    elseif st == 'c' then
      out[#out + 1] = 'already_cancelled'
    elseif redis.call('ZREM', due, id) == 1 then
      redis.call('SETRANGE', key, 16, 'c')
      redis.call('PEXPIRE', key, ttl)
      out[#out + 1] = 'cancelled'
    elseif redis.call('ZSCORE', inflight, id) then
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

/// Every script, for loading after a `NOSCRIPT` (e.g. a Redis restart emptied its cache).
pub(crate) fn all() -> [&'static Script; 1] {
    [&APPLY]
}
