-- RELEASE (store/scripts.rs): after an app or tenant resumed, moves the given held jobs whose
-- app and tenant are no longer paused back into the due index.
-- KEYS: held, due, hold, then one job key per id. ARGV: wake channel, shard, the ids.
-- Returns {moved, kept}.
local held, due, hold = KEYS[1], KEYS[2], KEYS[3]
local before = earliest(due)
local lowest = nil
local moved, kept = 0, 0
for i = 3, #ARGV do
  local id, key = ARGV[i], KEYS[i + 1]
  local score = redis.call('ZSCORE', held, id)
  if score then
    local rec = redis.call('GET', key)
    if rec and held_by(hold, rec) then
      kept = kept + 1
    else
      redis.call('ZREM', held, id)
      if rec then
        redis.call('ZADD', due, score, id)
        local s = tonumber(score)
        if lowest == nil or s < lowest then lowest = s end
      end
      moved = moved + 1
    end
  end
end
wake(ARGV[1], ARGV[2], before, lowest)
return {moved, kept}
