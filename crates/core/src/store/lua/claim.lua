-- CLAIM (store/scripts.rs): claims the due jobs of one shard that the caller read first.
local due, inflight, runs, held, hold, done = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, deadline, ttl, expired = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local reclaimed, holding_n = 0, 0
local dropped = {}
for i = 1, expired do
  local m, key = ARGV[4 + i], KEYS[6 + i]
  local lease = redis.call('ZSCORE', inflight, m)
  local sep = string.find(m, '|', 1, true)
  if lease and tonumber(lease) <= now and sep then
    redis.call('ZREM', inflight, m)
    local score, id = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
    local st = redis.call('GETRANGE', key, 8, 8)
    if st == 'f' or st == 'F' then
      redis.call('ZADD', due, 'NX', score, id)
      -- `r`/`R`: scheduled again after a lease expired; that fire may have gone out.
      if st == 'f' then
        redis.call('SETRANGE', key, 8, 'r')
      else
        redis.call('SETRANGE', key, 8, 'R')
      end
      reclaimed = reclaimed + 1
    elseif st == 'c' then
      -- Cancelled while its fire was in flight: finished now; the caller unindexes it.
      redis.call('PEXPIRE', key, ttl)
      redis.call('HDEL', runs, id, '/' .. id)
      redis.call('ZADD', done, now, id)
      dropped[#dropped + 1] = id
      dropped[#dropped + 1] = redis.call('GET', key)
    end
  elseif lease and tonumber(lease) <= now then
    -- Not `<score>|<id>`: no job to return; dropped, so that it wakes no scheduler again.
    redis.call('ZREM', inflight, m)
  end
end
local holding = redis.call('EXISTS', hold) == 1
local out = {}
-- The candidates' sorted-set moves, sent per key at the end (see `batch_add`); a candidate
-- named twice is claimed once.
local b = batch_new()
local seen = {}
for i = 5 + expired, #ARGV do
  local id, key = ARGV[i], KEYS[i + 2]
  local score = nil
  if not seen[id] then score = redis.call('ZSCORE', due, id) end
  seen[id] = true
  if score and tonumber(score) <= now then
    batch_add(b, 'ZREM', '', due, id)
    local rec = redis.call('GET', key)
    if rec then
      local st = string.sub(rec, 9, 9)
      if st == 's' or st == 'S' or st == 'r' or st == 'R' then
        if holding and held_by(hold, rec) then
          -- Its app or tenant is paused: it waits in the held set, due as it was.
          batch_add(b, 'ZADD', '', held, score, id)
          holding_n = holding_n + 1
        else
          if st == 's' or st == 'r' then redis.call('SETRANGE', key, 8, 'f') else redis.call('SETRANGE', key, 8, 'F') end
          batch_add(b, 'ZADD', '', inflight, deadline, score .. '|' .. id)
          out[#out + 1] = id
          out[#out + 1] = score
          out[#out + 1] = rec
          -- Only recurring jobs count their fires (for `max_runs`).
          if st == 'S' or st == 'R' then
            out[#out + 1] = redis.call('HGET', runs, id) or '0'
          else
            out[#out + 1] = '0'
          end
          -- `/<id>` keeps the instant of the first claim of a recurring job not acked yet
          -- (`c<ms>`), so that a claim after an expired lease replays that claim's plan (it
          -- may have fired several slots). The first one stands until an ack: a claim that
          -- replayed it and expired in turn fired the same slots. A value without the `c`
          -- is an expired lease's deadline, as kept before leases were renewed.
          if st == 'R' then
            local first = redis.call('HGET', runs, '/' .. id)
            if not first then redis.call('HSET', runs, '/' .. id, 'c' .. ARGV[1]) end
            out[#out + 1] = first or ''
          elseif st == 'S' then
            redis.call('HSET', runs, '/' .. id, 'c' .. ARGV[1])
            out[#out + 1] = ''
          else
            out[#out + 1] = ''
          end
        end
      end
    end
  end
end
batch_flush(b, {})
local head = {reclaimed, holding_n, #dropped / 2}
for _, v in ipairs(dropped) do head[#head + 1] = v end
for _, v in ipairs(out) do head[#head + 1] = v end
return head
