-- Shared by the scripts that read a job record (store/record.rs, layouts 3 and 4): the state
-- char at byte 9, then the first due (8 bytes) and its sub-ms nanos (LEB128), the app and the
-- tenant (LEB128 length + bytes each), the payload (in clear in layout 3, sealed in layout 4;
-- never looked into here), and the other fields as JSON. Layout 2 has no tenant.

-- A LEB128 number at `pos` and the position after it, or nil.
local function varint(s, pos)
  local n, mul = 0, 1
  while true do
    local b = string.byte(s, pos)
    if b == nil then return nil, pos end
    pos = pos + 1
    n = n + (b % 128) * mul
    if b < 128 then return n, pos end
    mul = mul * 128
  end
end

-- The app, the tenant ('' for none) and the position after them; nil for a record it cannot read.
local function app_tenant(rec)
  local _, p = varint(rec, 19)
  if not p then return nil end
  local len
  len, p = varint(rec, p)
  if not len then return nil end
  local app = string.sub(rec, p, p + len - 1)
  p = p + len
  local tenant = ''
  if string.sub(rec, 10, 10) ~= '2' then
    len, p = varint(rec, p)
    if not len then return nil end
    tenant = string.sub(rec, p, p + len - 1)
    p = p + len
  end
  return app, tenant, p
end

-- The secondary indexes (keys.rs `Index::name`) a record belongs in, as a set: none for a
-- finished or missing job, nor for the internal one-shots of retries, triggers and backfills.
local function memberships(rec)
  local names = {}
  if not rec then return names end
  local st = string.sub(rec, 9, 9)
  if st == '' or st == 'd' or st == 'c' then return names end
  local app, tenant, p = app_tenant(rec)
  if not app then return names end
  local len
  len, p = varint(rec, p)
  if not len then return names end
  local tail = string.sub(rec, p + len)
  local labels = nil
  if tail ~= '' then
    local ok, fields = pcall(cjson.decode, tail)
    if ok and type(fields) == 'table' then
      if fields['retry_of'] then return names end
      labels = fields['labels']
    end
  end
  names['a:' .. app] = true
  if tenant ~= '' then names['t:' .. tenant] = true end
  -- Upper case: recurring (scripts.rs).
  if st == 'S' or st == 'R' or st == 'P' or st == 'F' then names['r'] = true end
  if type(labels) == 'table' then
    for k, v in pairs(labels) do names['l:' .. k .. '=' .. tostring(v)] = true end
  end
  return names
end

-- True when the record's app or tenant is paused (a field of the shard's hold hash).
local function held_by(hold, rec)
  local app, tenant = app_tenant(rec)
  if not app then return false end
  if redis.call('HEXISTS', hold, 'a:' .. app) == 1 then return true end
  return tenant ~= '' and redis.call('HEXISTS', hold, 't:' .. tenant) == 1
end

-- Publishes a wake-up when `lowest` is earlier than the shard's earliest due before the call.
local function wake(channel, shard, before, lowest)
  if lowest and (before == nil or lowest < before) then
    redis.call('PUBLISH', channel, shard .. ':' .. string.format('%d', lowest))
  end
end

-- The index name of an index key (`…}:ix:<name>`).
local function index_name(key)
  local i = string.find(key, '}:ix:', 1, true)
  return i and string.sub(key, i + 5) or ''
end

-- Adds `d` to the per-index count of `name` in `delta` (app and tenant indexes only: the
-- shard's count hash is what `GET /v1/stats` reads; labels may be of any cardinality).
local function tally(delta, name, d)
  local kind = string.sub(name, 1, 2)
  if d ~= 0 and (kind == 'a:' or kind == 't:') then delta[name] = (delta[name] or 0) + d end
end

-- Writes the tallies into the count hash, dropping names that reach zero.
local function flush_counts(cnt, delta)
  for name, d in pairs(delta) do
    if d ~= 0 and redis.call('HINCRBY', cnt, name, d) <= 0 then redis.call('HDEL', cnt, name) end
  end
end

-- Sorted-set writes gathered per key and command, sent as one call each at `flush`: a script
-- that changes many jobs makes a few calls per index instead of one per job. The scripts flush
-- before they touch a job a second time, so between flushes every member is distinct and the
-- gathered writes commute with everything else the script does.
local function batch_new() return {order = {}, cmds = {}} end

local function batch_add(b, cmd, flag, key, a1, a2)
  -- Looked up by table, not by a joined string: no string is made per write.
  local by_flag = b.cmds[cmd]
  if not by_flag then by_flag = {}; b.cmds[cmd] = by_flag end
  local by_key = by_flag[flag]
  if not by_key then by_key = {}; by_flag[flag] = by_key end
  local c = by_key[key]
  if not c then
    c = {cmd = cmd, flag = flag, key = key, args = {}}
    by_key[key] = c
    b.order[#b.order + 1] = c
  end
  local args = c.args
  args[#args + 1] = a1
  if a2 ~= nil then args[#args + 1] = a2 end
end

-- Sends the gathered writes (at most 1,000 arguments a call); tallies the index members that
-- `ZADD` added and `ZREM` removed into `delta`.
local function batch_flush(b, delta)
  for _, c in ipairs(b.order) do
    local iname = index_name(c.key)
    for i = 1, #c.args, 1000 do
      local n
      local last = math.min(i + 999, #c.args)
      if c.flag ~= '' then
        n = redis.call(c.cmd, c.key, c.flag, unpack(c.args, i, last))
      else
        n = redis.call(c.cmd, c.key, unpack(c.args, i, last))
      end
      if c.cmd == 'ZREM' then n = -n elseif c.flag ~= '' then n = 0 end
      tally(delta, iname, n)
    end
  end
  b.order, b.cmds = {}, {}
end

-- Drops finished jobs whose records have expired from the done set and the creation index
-- (a bounded number per call; the next call goes on).
local function trim_done(done, created, cutoff)
  local gone = redis.call('ZRANGEBYSCORE', done, '-inf', cutoff, 'LIMIT', 0, 256)
  if #gone > 0 then
    redis.call('ZREM', done, unpack(gone))
    redis.call('ZREM', created, unpack(gone))
  end
end

local function earliest(due)
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  return first[2] and tonumber(first[2]) or nil
end
