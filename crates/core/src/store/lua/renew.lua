-- RENEW (store/scripts.rs): moves the leases one claim still holds, for one shard.
-- A member whose lease is no longer `old` was acked, reclaimed or held meanwhile: left alone,
-- and its position (1 = the first member) returned.
local inflight, old, new = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local moves, lost = {}, {}
for i = 3, #ARGV do
  local lease = redis.call('ZSCORE', inflight, ARGV[i])
  if lease and tonumber(lease) == old then
    moves[#moves + 1] = new
    moves[#moves + 1] = ARGV[i]
  else
    lost[#lost + 1] = i - 2
  end
end
-- In steps of 500 members, within Lua's `unpack` limit.
for i = 1, #moves, 1000 do
  redis.call('ZADD', inflight, 'XX', unpack(moves, i, math.min(i + 999, #moves)))
end
return lost
