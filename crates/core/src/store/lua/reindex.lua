-- REINDEX (store/scripts.rs): removes a job from the given indexes it no longer belongs in
-- (after an update or a cancel, or found stale by a reader); keeps its counters and history
-- while it is pending and lets them expire with it once it is finished.
-- The name `c` stands for the creation index, which holds every listed job while its record
-- lives. KEYS: job, counters, history, the shard's count hash, index keys. ARGV: id, ttl ms,
-- the index names (one per index key).
local rec = redis.call('GET', KEYS[1])
local names = memberships(rec)
local removed = 0
local delta = {}
for i = 5, #KEYS do
  local name = ARGV[i - 2]
  local keep = names[name]
  if name == 'c' then keep = rec and true or false end
  if not keep then
    local n = redis.call('ZREM', KEYS[i], ARGV[1])
    tally(delta, name, -n)
    removed = removed + n
  end
end
flush_counts(KEYS[4], delta)
local st = rec and string.sub(rec, 9, 9) or ''
if st == '' or st == 'd' or st == 'c' then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
else
  redis.call('PERSIST', KEYS[2])
  redis.call('PERSIST', KEYS[3])
end
return removed
