-- ACK (store/scripts.rs): acknowledges fires that Kafka accepted, for one shard.
-- ARGV per job (scripts.rs has the whole list): ..., missed, skipped, nh, nh history entries,
-- then excluded (slots an attached calendar excluded; counted as `excluded`), ns, ns
-- slot-history entries (the latest slots that did not fire; kept 30 days after the latest).
local due, inflight, runs, done, cnt, created = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ttl, channel, shard, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
trim_done(done, created, now - tonumber(ttl))
local before = earliest(due)
local lowest = nil
local out = {}
local delta = {}
-- The sorted-set writes, sent per key at the end (see `batch_add`).
local b = batch_new()
local seen = {}
local a, k = 5, 7
while a <= #ARGV do
  local id, score, lease = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local fired, nxt, recurring = tonumber(ARGV[a + 3]), ARGV[a + 4], ARGV[a + 5] == '1'
  local n, missed, skipped, nh = tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7]), tonumber(ARGV[a + 8]), tonumber(ARGV[a + 9])
  local key = KEYS[k]
  if seen[id] then batch_flush(b, delta) end
  seen[id] = true
  local counters, history, slots = nil, nil, nil
  local first_index = k + 1
  local ns = tonumber(ARGV[a + 11 + nh])
  if recurring then
    counters, history = KEYS[k + 1], KEYS[k + 2]
    first_index = k + 3
    -- The slot-history key comes only with entries for it: most acks have none.
    if ns > 0 then
      slots = KEYS[k + 3]
      first_index = k + 4
    end
  end
  local member = score .. '|' .. id
  local held = redis.call('ZSCORE', inflight, member)
  local st = ''
  if held and tonumber(held) == lease then
    batch_add(b, 'ZREM', '', inflight, member)
    st = redis.call('GETRANGE', key, 8, 8)
  end
  local finished = false
  if st == 'f' and nxt ~= '' then
    -- A one-shot the scheduler could not fire yet (its clock stepped back): due again.
    batch_add(b, 'ZADD', '', due, nxt, id)
    redis.call('SETRANGE', key, 8, 's')
    out[#out + 1] = 'next'
  elseif st == 'f' then
    redis.call('SETRANGE', key, 8, 'd')
    redis.call('PEXPIRE', key, ttl)
    finished = true
    out[#out + 1] = 'done'
  elseif st == 'F' then
    if fired > 0 then redis.call('HINCRBY', runs, id, fired) end
    -- The plan of an expired lease, if one was replayed, is acknowledged now.
    redis.call('HDEL', runs, '/' .. id)
    if nxt ~= '' then
      batch_add(b, 'ZADD', '', due, nxt, id)
      redis.call('SETRANGE', key, 8, 'S')
      for j = first_index, first_index + n - 1 do batch_add(b, 'ZADD', 'XX', KEYS[j], nxt, id) end
      local s = tonumber(nxt)
      if lowest == nil or s < lowest then lowest = s end
      out[#out + 1] = 'next'
    else
      redis.call('SETRANGE', key, 8, 'd')
      redis.call('PEXPIRE', key, ttl)
      redis.call('HDEL', runs, id)
      finished = true
      out[#out + 1] = 'done'
    end
  elseif st == 'c' then
    redis.call('PEXPIRE', key, ttl)
    redis.call('HDEL', runs, id, '/' .. id)
    finished = true
    out[#out + 1] = 'cancelled'
  else
    out[#out + 1] = 'stale'
  end
  if finished then
    -- Internal one-shots (retries, triggers, backfills) have no index and are not listed.
    if n > 0 then batch_add(b, 'ZADD', '', done, now, id) end
    for j = first_index, first_index + n - 1 do batch_add(b, 'ZREM', '', KEYS[j], id) end
  end
  if recurring and st ~= '' then
    if fired > 0 then redis.call('HINCRBY', counters, 'fired', fired) end
    if missed > 0 then redis.call('HINCRBY', counters, 'missed', missed) end
    if skipped > 0 then redis.call('HINCRBY', counters, 'skipped', skipped) end
    local excluded = tonumber(ARGV[a + 10 + nh])
    if excluded > 0 then redis.call('HINCRBY', counters, 'excluded', excluded) end
    if nh > 0 then
      redis.call('LPUSH', history, unpack(ARGV, a + 10, a + 9 + nh))
      redis.call('LTRIM', history, 0, 49)
    end
    if ns > 0 then
      redis.call('LPUSH', slots, unpack(ARGV, a + 12 + nh, a + 11 + nh + ns))
      redis.call('LTRIM', slots, 0, 49)
      redis.call('PEXPIRE', slots, 2592000000)
    end
    if finished then
      redis.call('PEXPIRE', counters, ttl)
      redis.call('PEXPIRE', history, ttl)
    end
  end
  a = a + 12 + nh + ns
  k = first_index + n
end
batch_flush(b, delta)
flush_counts(cnt, delta)
wake(channel, shard, before, lowest)
return out
