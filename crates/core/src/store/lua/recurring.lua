-- RECURRING (store/scripts.rs): puts the recurring jobs among the given ones into the shard's
-- recurring index (`ix:r`) at the score they wait under: their place in the due, paused or
-- held set, or for one firing now the due of its claim as the caller read it. Idempotent
-- (`ZADD NX`: an entry the scripts keep is never moved here).
-- KEYS: the recurring index, due, paused, held, then the job keys.
-- ARGV: per job key, its id and the due of its claim ('' when not known).
-- Returns {added, then the ids of firing jobs given no due, to ask again with one}.
local out = {0}
for i = 5, #KEYS do
  local id, claimed = ARGV[2 * (i - 5) + 1], ARGV[2 * (i - 5) + 2]
  local st = redis.call('GETRANGE', KEYS[i], 8, 8)
  local score = nil
  if st == 'S' or st == 'R' or st == 'P' then
    score = redis.call('ZSCORE', KEYS[2], id) or redis.call('ZSCORE', KEYS[3], id)
      or redis.call('ZSCORE', KEYS[4], id)
  elseif st == 'F' then
    if claimed == '' then out[#out + 1] = id else score = claimed end
  end
  if score then out[1] = out[1] + redis.call('ZADD', KEYS[1], 'NX', score, id) end
end
return out
