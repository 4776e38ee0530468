-- NOTE_FIRES (store/scripts.rs): records fires requested through the API (trigger, backfill)
-- in a job's history and counters. KEYS: job, counters, history. ARGV: counter field, ttl ms,
-- then the history entries. Finished jobs' keys expire with the record.
local n = #ARGV - 2
for i = 3, #ARGV do redis.call('LPUSH', KEYS[3], ARGV[i]) end
redis.call('LTRIM', KEYS[3], 0, 49)
redis.call('HINCRBY', KEYS[2], ARGV[1], n)
local st = redis.call('GETRANGE', KEYS[1], 8, 8)
if st == '' or st == 'd' or st == 'c' then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return n
