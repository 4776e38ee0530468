-- REMOVE (index/store.rs): letters out of the DLQ index (past the topic's retention, or over
-- `replayer.index_max_letters`), with their set entries and counters; a letter not there
-- changes nothing. KEYS: letters, time, offsets, counts, meta, then each letter's filter sets.
-- ARGV: meta field to add the count to ('' = none), then per letter: id, member, number of
-- filter sets, number of counters, counters. Returns the number removed.
local letters, time, offsets, counts, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local field = ARGV[1]
local a, k, removed = 2, 6, 0
while a <= #ARGV do
  local id, member = ARGV[a], ARGV[a + 1]
  local nk, nf = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  if redis.call('HDEL', letters, id) == 1 then
    removed = removed + 1
    redis.call('ZREM', time, member)
    redis.call('ZREM', offsets, id)
    for i = 0, nk - 1 do redis.call('ZREM', KEYS[k + i], member) end
    for i = 0, nf - 1 do
      if redis.call('HINCRBY', counts, ARGV[a + i], -1) <= 0 then
        redis.call('HDEL', counts, ARGV[a + i])
      end
    end
  end
  k = k + nk
  a = a + nf
end
if field ~= '' and removed > 0 then redis.call('HINCRBY', meta, field, removed) end
return removed
