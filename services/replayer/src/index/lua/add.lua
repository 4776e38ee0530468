-- ADD (index/store.rs): dead letters into the DLQ index, and how far each partition is read,
-- in one atomic step; a letter already there changes nothing (its counters are not counted
-- twice), so a batch read again after a crash adds only what is new.
-- KEYS: letters (hash), time (lex set), offsets (lex set), counts (hash), next (hash), then
-- each letter's filter sets in turn. ARGV: n, then n pairs (partition, next offset), then per
-- letter: id, member, stored value, number of filter sets, number of counters, counters.
-- Returns the number of letters added.
local letters, time, offsets, counts, next = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local a = 1
local np = tonumber(ARGV[a])
a = a + 1
for _ = 1, np do
  local p, nx = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  local cur = tonumber(redis.call('HGET', next, p) or '-1')
  if nx > cur then redis.call('HSET', next, p, nx) end
end
local k = 6
local added = 0
while a <= #ARGV do
  local id, member, value = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local nk, nf = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  a = a + 5
  if redis.call('HSETNX', letters, id, value) == 1 then
    added = added + 1
    redis.call('ZADD', time, 0, member)
    redis.call('ZADD', offsets, 0, id)
    for i = 0, nk - 1 do redis.call('ZADD', KEYS[k + i], 0, member) end
    for i = 0, nf - 1 do redis.call('HINCRBY', counts, ARGV[a + i], 1) end
  end
  k = k + nk
  a = a + nf
end
return added
