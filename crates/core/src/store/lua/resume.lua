-- RESUME (store/scripts.rs): puts a paused job back into the due index at the due time it had,
-- so that slots missed meanwhile are planned by the scheduler like any late slot (misfire
-- policy, counted). KEYS: job, due, paused, notes. ARGV: id, wake channel, shard.
-- Returns resumed | not_paused | not_found.
local key, due, paused, notes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local st = redis.call('GETRANGE', key, 8, 8)
if st == '' then return 'not_found' end
if st ~= 'p' and st ~= 'P' then return 'not_paused' end
local score = redis.call('ZSCORE', paused, id)
local note = redis.call('HGET', notes, id)
local prior = note and string.sub(note, 1, 1) or ''
if prior ~= 's' and prior ~= 'S' and prior ~= 'r' and prior ~= 'R' then
  if st == 'p' then prior = 's' else prior = 'S' end
end
redis.call('SETRANGE', key, 8, prior)
redis.call('ZREM', paused, id)
redis.call('HDEL', notes, id)
if score then
  local before = earliest(due)
  redis.call('ZADD', due, score, id)
  wake(ARGV[2], ARGV[3], before, tonumber(score))
end
return 'resumed'
