-- PURGE (store/scripts.rs): deletes a finished job (dispatched or cancelled) before its
-- record expires: the record, its counters, history and latest run, and its done entry.
-- KEYS: done, job, counters, history, run, creation index. ARGV: id. Returns 1 when purged,
-- else 0.
local st = redis.call('GETRANGE', KEYS[2], 8, 8)
if st ~= 'd' and st ~= 'c' then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
