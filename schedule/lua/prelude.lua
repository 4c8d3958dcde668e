-- prelude.lua: what every scheduler script starts with (schedule/lua.go
-- puts it in front of each): the key names, all under the prefix in ARGV[1]
-- (so the scheduler needs one Redis, or one primary, not a cluster), and the
-- helpers that arm a trigger, forget an item and check a claim.

local P = ARGV[1]
local ITEMS, USERS, DUE = P .. 'sched:items', P .. 'sched:users', P .. 'sched:due'
local INFLIGHT, CLAIMS, CHANGED = P .. 'sched:inflight', P .. 'sched:claims', P .. 'sched:changed'
local function trigger(id) return P .. 'sched:trigger:' .. id end
local function userkey(u) return P .. 'sched:user:' .. u end
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- arm makes id pending, due at at (ms): indexed, with a trigger expiring
-- then, and every instance's timer told. A trigger already past is touched
-- at once: the touch expires it, so Redis publishes its event now.
local function arm(id, at, now)
  redis.call('ZADD', DUE, at, id)
  redis.call('SET', trigger(id), '1', 'PXAT', at)
  if at < now then redis.call('EXISTS', trigger(id)) end
  redis.call('PUBLISH', CHANGED, at)
end
-- forget deletes an item and its user index entries.
local function forget(id)
  redis.call('HDEL', ITEMS, id)
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
