-- APPLY (store/scripts.rs): ordered inserts and cancels for one shard, in one atomic step.
local due, paused, held, done, cnt, notes, created, runs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local ttl, channel, shard, now = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
trim_done(done, created, now - ttl)
local before = earliest(due)
local lowest = nil
local out = {}
local delta = {}
-- The sorted-set writes of the batch (due, done, held, paused and index entries), sent per key
-- at the end, or before a job the batch already touched is touched again.
local b = batch_new()
local seen = {}
local k, a = 9, 5
while a <= #ARGV do
  local kind, id, fp, rec, score = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local n, expect, born = tonumber(ARGV[a + 5]), ARGV[a + 6], ARGV[a + 7]
  local key = KEYS[k]
  local status, old = 'finished', ''
  if seen[id] then batch_flush(b, delta) end
  seen[id] = true
  if kind == 'i' then
    local cur = redis.call('GETRANGE', key, 0, 8)
    local curfp = string.sub(cur, 1, 8)
    if expect ~= '' and curfp ~= expect then
      status = 'precondition_failed'
    elseif curfp == fp then
      status = 'duplicate'
    else
      local st = string.sub(cur, 9, 9)
      if cur ~= '' then
        -- An update: the job may wait in the held set or be finished. A lease that expires
        -- from now on belongs to the new record: no plan of the old one is replayed.
        old = redis.call('GET', key)
        redis.call('HDEL', runs, '/' .. id)
        batch_add(b, 'ZREM', '', held, id)
        batch_add(b, 'ZREM', '', done, id)
      end
      if st == 'p' or st == 'P' then
        -- A paused job stays paused when it is replaced; its note keeps the new state.
        local code = 'p'
        if string.sub(rec, 9, 9) == 'S' then code = 'P' end
        redis.call('SET', key, string.sub(rec, 1, 8) .. code .. string.sub(rec, 10))
        redis.call('ZADD', paused, score, id)
        local note = redis.call('HGET', notes, id)
        if note then redis.call('HSET', notes, id, string.sub(rec, 9, 9) .. string.sub(note, 2)) end
      else
        redis.call('SET', key, rec)
        batch_add(b, 'ZADD', '', due, score, id)
        local s = tonumber(score)
        if lowest == nil or s < lowest then lowest = s end
      end
      for j = 1, n do batch_add(b, 'ZADD', '', KEYS[k + j], score, id) end
      -- Internal one-shots (retries, triggers, backfills) are in no index and not listed.
      if n > 0 then batch_add(b, 'ZADD', 'NX', created, born, id) end
      if cur == '' then status = 'created' else status = 'updated' end
    end
    a = a + 8 + n
  else
    -- A cancel; its extra keys are the job's counters and history, which expire with it, then
    -- the indexes the caller believes it is in (it leaves them; the caller checks the old
    -- record for any other).
    local st = redis.call('GETRANGE', key, 8, 8)
    if st == '' then
      status = 'not_found'
    elseif st == 'c' then
      status = 'already_cancelled'
    elseif st == 's' or st == 'S' or st == 'r' or st == 'R' or st == 'p' or st == 'P' then
      batch_add(b, 'ZREM', '', due, id)
      batch_add(b, 'ZREM', '', paused, id)
      batch_add(b, 'ZREM', '', held, id)
      -- Only a job paused on its own has a note.
      if st == 'p' or st == 'P' then redis.call('HDEL', notes, id) end
      -- Its fire count (`max_runs`) and any expired lease's deadline go with it.
      redis.call('HDEL', runs, id, '/' .. id)
      redis.call('SETRANGE', key, 8, 'c')
      redis.call('PEXPIRE', key, ttl)
      batch_add(b, 'ZADD', '', done, now, id)
      redis.call('PEXPIRE', KEYS[k + 1], ttl)
      redis.call('PEXPIRE', KEYS[k + 2], ttl)
      for j = 3, n do batch_add(b, 'ZREM', '', KEYS[k + j], id) end
      old = redis.call('GET', key)
      status = 'cancelled'
    elseif st == 'F' then
      -- The fire in flight goes out; the ack sees 'c' and schedules nothing after it.
      redis.call('SETRANGE', key, 8, 'c')
      status = 'dispatched'
    elseif st == 'f' then
      status = 'dispatched'
    end
    a = a + 8
  end
  out[#out + 1] = status
  out[#out + 1] = old
  k = k + 1 + n
end
batch_flush(b, delta)
flush_counts(cnt, delta)
wake(channel, shard, before, lowest)
return out
