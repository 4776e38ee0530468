-- PAGE (store/scripts.rs): up to `count` members of a sorted set after the position
-- (score, id). When `id` is still there with that score, its rank gives the exact next ones
-- (`r`); otherwise the members from `score` up, from `offset` on (`s`), and the caller drops
-- those not after the position (Lua's string order depends on the server's locale; Rust's
-- byte order is the sorted set's). KEYS: the set. ARGV: score, id ('' = from score on),
-- count, offset, max score. Returns {mode, member, score, member, score, ...}.
local key = KEYS[1]
local count = tonumber(ARGV[3])
if ARGV[2] ~= '' then
  local s = redis.call('ZSCORE', key, ARGV[2])
  if s and tonumber(s) == tonumber(ARGV[1]) then
    local r = redis.call('ZRANK', key, ARGV[2])
    local out = redis.call('ZRANGE', key, r + 1, r + count, 'WITHSCORES')
    table.insert(out, 1, 'r')
    return out
  end
end
local out = redis.call('ZRANGEBYSCORE', key, ARGV[1], ARGV[5], 'WITHSCORES', 'LIMIT', ARGV[4], count)
table.insert(out, 1, 's')
return out
