-- PAUSE (store/scripts.rs): takes one job out of the due index (or the held set) into the
-- paused set, due as it was. KEYS: job, due, paused, held, notes. ARGV: id, note JSON.
-- Returns paused | already_paused | busy (its fire is being produced) | finished | not_found.
local key, due, paused, held, notes = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id = ARGV[1]
local st = redis.call('GETRANGE', key, 8, 8)
if st == '' then return 'not_found' end
if st == 'p' or st == 'P' then return 'already_paused' end
if st == 'f' or st == 'F' then return 'busy' end
if st == 'd' or st == 'c' then return 'finished' end
local score = redis.call('ZSCORE', due, id) or redis.call('ZSCORE', held, id)
if not score then return 'busy' end
redis.call('ZREM', due, id)
redis.call('ZREM', held, id)
redis.call('ZADD', paused, score, id)
if st == 's' or st == 'r' then redis.call('SETRANGE', key, 8, 'p') else redis.call('SETRANGE', key, 8, 'P') end
redis.call('HSET', notes, id, st .. ARGV[2])
return 'paused'
