-- PAGE (store/scripts.rs): up to `count` members of a sorted set after the position
-- (score, id), in the set's order (score, then member bytes). When `id` is still there with
-- that score, its rank gives the next ones; otherwise a binary search over the members at that
-- score finds the first whose id sorts after it (by bytes, as the set sorts them: Lua's own
-- string order follows the server's locale), so a long run of equal scores costs O(log n)
-- calls, not a read of the run. Every member returned is after the position.
-- KEYS: the set. ARGV: score, id ('' = from score on), count, unused, max score.
-- Returns {'r', member, score, member, score, ...}.
local key = KEYS[1]
local count = tonumber(ARGV[3])

-- True when `a` sorts after `b` byte by byte (a longer string after its own prefix).
local function after(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end

local function from_rank(r)
  local out = redis.call('ZRANGE', key, r, r + count - 1, 'WITHSCORES')
  table.insert(out, 1, 'r')
  return out
end

local id = ARGV[2]
if id == '' then
  local out = redis.call('ZRANGEBYSCORE', key, ARGV[1], ARGV[5], 'WITHSCORES', 'LIMIT', 0, count)
  table.insert(out, 1, 'r')
  return out
end
local s = redis.call('ZSCORE', key, id)
if s and tonumber(s) == tonumber(ARGV[1]) then
  return from_rank(redis.call('ZRANK', key, id) + 1)
end
-- Members before the score, and up to the end of the run at the score.
local lo = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[1])
local hi = redis.call('ZCOUNT', key, '-inf', ARGV[1])
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  local m = redis.call('ZRANGE', key, mid, mid)[1]
  if m and after(m, id) then hi = mid else lo = mid + 1 end
end
return from_rank(lo)
