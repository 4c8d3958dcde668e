-- apply.lua: add one batch of an instance's reports to the per-day figures,
-- counting each sequence number once (analytics/redis.go).
--
-- KEYS: none; keys are named from the prefix p (ARGV[1]):
--   p..'analytics:day:'..day           HASH, per type t of that day:
--                                      's:'..t sent, 'd:'..t delivered,
--                                      'r:'..t read, 'h'..b..':'..t reads in
--                                      bucket b of time to read
--   p..'analytics:types:'..day         SET the day's types (at most max types)
--   p..'analytics:seen:'..k..':'..blk  STRING a bitmap: bit n set once
--                                      sequence number blk*2^20+n was counted
--                                      as k ('s' sent, 'd' delivered)
-- A field starts with its code and the first ':' ends it, so any type
-- (':' included) reads back whole. Day and types keys expire with the day's
-- retention (EXPIREAT); a bitmap a day after its last report.
--
-- ARGV: prefix, max types, the other type, bitmap TTL (s), mark count, then
--   per mark: kind ('s' or 'd'), block, bit, day (YYYY-MM-DD), expire at
--   (Unix s), type; then, to the end, per read bucket: day, expire at, type,
--   bucket, count.
-- Returns: 0.

local p = ARGV[1]
local max_types = tonumber(ARGV[2])
local other = ARGV[3]
local ttl = tonumber(ARGV[4])
local marks = tonumber(ARGV[5])

local function day_key(day) return p .. 'analytics:day:' .. day end
local function types_key(day) return p .. 'analytics:types:' .. day end

-- resolved caches, for this batch, what a day's type counts as: itself, or
-- the other type once the day has max types.
local resolved = {}
local function resolve(day, t)
  local k = day .. '\n' .. t
  local r = resolved[k]
  if r then return r end
  r = t
  if t ~= other and redis.call('SISMEMBER', types_key(day), t) == 0 then
    if redis.call('SCARD', types_key(day)) < max_types then
      redis.call('SADD', types_key(day), t)
    else
      r = other
    end
  end
  resolved[k] = r
  return r
end

-- The increments are summed here and written once per field.
local adds, expiry = {}, {}
local function add(day, at, field, n)
  expiry[day] = at
  local f = adds[day]
  if not f then
    f = {}
    adds[day] = f
  end
  f[field] = (f[field] or 0) + n
end

local touched = {}
local i = 6
for _ = 1, marks do
  local kind, block, bit, day, at, t = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  i = i + 6
  local key = p .. 'analytics:seen:' .. kind .. ':' .. block
  if redis.call('SETBIT', key, bit, 1) == 0 then
    add(day, at, kind .. ':' .. resolve(day, t), 1)
  end
  if not touched[key] then
    touched[key] = true
    redis.call('EXPIRE', key, ttl)
  end
end
while i <= #ARGV do
  local day, at, t, bucket, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  i = i + 5
  local r = resolve(day, t)
  add(day, at, 'r:' .. r, n)
  add(day, at, 'h' .. bucket .. ':' .. r, n)
end
for day, fields in pairs(adds) do
  for f, n in pairs(fields) do redis.call('HINCRBY', day_key(day), f, n) end
  redis.call('EXPIREAT', day_key(day), expiry[day])
  redis.call('EXPIREAT', types_key(day), expiry[day])
end
return 0
