-- WALK (index/store.rs): one step of a walk over a lex set of the DLQ index, checking each
-- letter against the filter. Bounded: at most `budget` members per call; the caller goes on
-- from the last member returned.
-- KEYS: the set, letters. ARGV: order ('asc' | 'desc'), lo, hi (ZRANGEBYLEX bounds), budget,
-- want (most stored values returned), mode ('list' | 'stats'), members ('t': time members
-- '<at>:<id>', 'o': ids), app, reason, stage, tenant, job id, error needle (lowercase), since,
-- until (15-digit times; '' = any), stop ('1': end the step at the `want`-th match, when the
-- caller needs no count). Empty filter values match anything.
-- Returns {examined, last member, matched, stored values... } ('list'), or {examined, last,
-- matched, 'a', app, n, ..., 'r', ..., 's', ...} ('stats').
local set, letters = KEYS[1], KEYS[2]
local order, lo, hi = ARGV[1], ARGV[2], ARGV[3]
local budget, want, mode, kind = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local want_app, want_reason, want_stage, want_tenant, want_job = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local needle, since, till, stop = ARGV[13], ARGV[14], ARGV[15], ARGV[16] == '1'

local members
if order == 'desc' then
  members = redis.call('ZREVRANGEBYLEX', set, hi, lo, 'LIMIT', 0, budget)
else
  members = redis.call('ZRANGEBYLEX', set, lo, hi, 'LIMIT', 0, budget)
end
local n = #members
if n == 0 then return {0, '', 0} end
local ids = {}
for i = 1, n do
  if kind == 't' then ids[i] = string.sub(members[i], 17) else ids[i] = members[i] end
end
local values = redis.call('HMGET', letters, unpack(ids))

local function eq(want, have)
  return want == '' or have == want
end
local function key(v)
  if type(v) == 'string' then return v end
  return '-'
end

local out = {n, members[n], 0}
local matched = 0
local by = {a = {}, r = {}, s = {}}
for i = 1, n do
  local v = values[i]
  if v then
    local at = string.sub(v, 1, 15)
    local ok = (since == '' or at >= since) and (till == '' or at < till)
    local l
    if ok then
      l = cjson.decode(string.sub(v, 16))
      ok = eq(want_app, l.app) and eq(want_reason, l.reason) and eq(want_stage, l.stage)
        and eq(want_tenant, l.tenant) and eq(want_job, l.job_id)
      if ok and needle ~= '' then
        ok = type(l.error) == 'string' and string.find(string.lower(l.error), needle, 1, true) ~= nil
      end
    end
    if ok then
      matched = matched + 1
      if mode == 'stats' then
        local a, r, s = key(l.app), key(l.reason), key(l.stage)
        by.a[a] = (by.a[a] or 0) + 1
        by.r[r] = (by.r[r] or 0) + 1
        by.s[s] = (by.s[s] or 0) + 1
      elseif matched <= want then
        table.insert(out, v)
        if stop and matched == want then
          out[1], out[2] = i, members[i]
          break
        end
      end
    end
  end
end
out[3] = matched
if mode == 'stats' then
  for kind, counts in pairs(by) do
    for k, c in pairs(counts) do
      table.insert(out, kind)
      table.insert(out, k)
      table.insert(out, c)
    end
  end
end
return out
