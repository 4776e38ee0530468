-- REINDEX (store/scripts.rs): removes a job from the given indexes it no longer belongs in
-- (after an update or a cancel, or found stale by a reader); keeps its counters and history
-- while it is pending and lets them expire with it once it is finished.
-- KEYS: job, counters, history, index keys. ARGV: id, ttl ms, the index names (one per key).
local rec = redis.call('GET', KEYS[1])
local names = memberships(rec)
local removed = 0
for i = 4, #KEYS do
  if not names[ARGV[i - 1]] then removed = removed + redis.call('ZREM', KEYS[i], ARGV[1]) end
end
local st = rec and string.sub(rec, 9, 9) or ''
if st == '' or st == 'd' or st == 'c' then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
else
  redis.call('PERSIST', KEYS[2])
  redis.call('PERSIST', KEYS[3])
end
return removed
