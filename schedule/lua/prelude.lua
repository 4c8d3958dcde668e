-- prelude.lua: what every scheduler script starts with (schedule/lua.go
-- puts it in front of each): the key names, all under the prefix in ARGV[1]
-- (so the scheduler needs one Redis, or one primary, not a cluster), and the
-- helpers that arm a trigger, forget an item and check a claim.

local P = ARGV[1]
local ITEMS, USERS, DUE = P .. 'sched:items', P .. 'sched:users', P .. 'sched:due'
local INFLIGHT, CLAIMS, CHANGED = P .. 'sched:inflight', P .. 'sched:claims', P .. 'sched:changed'
local AT = P .. 'sched:at'
local function trigger(id) return P .. 'sched:trigger:' .. id end
local function userkey(u) return P .. 'sched:user:' .. u end
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- arm makes id pending, due at at (ms): indexed, with a trigger expiring
-- then, and every instance's timer told.
--
-- The trigger's expiry is set with PEXPIREAT, which Redis 6.0 has (SET …
-- PXAT came in 6.2). An expiry already past makes PEXPIREAT delete the key
-- with a "del" event, not "expired", which nobody listens to: so a trigger
-- due now (or one PEXPIREAT found past, the clock having moved on since
-- now was read) expires a millisecond from now instead, and the PUBLISH
-- below wakes every instance's timer, whose pass touches it as soon as it
-- has expired.
local function arm(id, at, now)
  redis.call('ZADD', DUE, at, id)
  local key = trigger(id)
  redis.call('SET', key, '1')
  if at <= now or redis.call('PEXPIREAT', key, at) == 0 or redis.call('EXISTS', key) == 0 then
    redis.call('SET', key, '1', 'PX', 1)
  end
  redis.call('PUBLISH', CHANGED, at)
end
-- forget deletes an item and its index entries.
local function forget(id)
  redis.call('HDEL', ITEMS, id)
  redis.call('ZREM', AT, id)
  local users = redis.call('HGET', USERS, id)
  if users then
    for _, u in ipairs(cjson.decode(users)) do redis.call('ZREM', userkey(u), id) end
    redis.call('HDEL', USERS, id)
  end
end
-- holds says whether the claim token still holds id.
local function holds(id, token)
  local c = redis.call('HGET', CLAIMS, id)
  return c and string.sub(c, 1, #token + 1) == token .. '|'
end
