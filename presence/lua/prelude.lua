-- prelude.lua: what every presence script starts with; presence/lua.go puts
-- it in front of heartbeat.lua, join.lua, leave.lua and sweep.lua.
--
-- KEYS: none; ARGV: none. It only defines locals, and returns nothing.
--
-- Keys, under the prefix p (ARGV[1] of every script), for a channel c and
-- an instance id i (presence/redis.go explains them):
--   p..'presence:instances'                 ZSET i -> deadline, ms, Redis clock
--   p..'presence:{'..c..'}:conns'           HASH connection id -> i..' '..user id
--   p..'presence:{'..c..'}:users'           HASH user id -> its connections in c
--   p..'presence:{'..c..'}:info'            HASH user id -> user_info JSON, '' if none
--   p..'presence:instance:{'..i..'}:conns'  ZSET, score 0: entry(c, connection id)
-- Instance ids hold no space, so the first space of a conns value ends it;
-- a channel key always starts 'presence:{' and ends in a fixed suffix, so no
-- channel name reaches another channel's or an instance's keys.

-- now_ms is Redis's clock: every instance's deadline is judged by the one
-- clock, so instances' clocks need not agree.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function ms(n) return string.format('%.0f', n) end

local function instances_key(p) return p .. 'presence:instances' end

local function channel_key(p, c, suffix) return p .. 'presence:{' .. c .. '}:' .. suffix end

local function instance_key(p, i) return p .. 'presence:instance:{' .. i .. '}:conns' end

-- entry names a connection in its instance's index: the channel's length
-- first, so any channel name and connection id split back apart.
local function entry(c, conn) return #c .. ':' .. c .. conn end

local function split_entry(e)
  local n, rest = string.match(e, '^(%d+):(.*)$')
  n = tonumber(n)
  return string.sub(rest, 1, n), string.sub(rest, n + 1)
end

-- alive says whether instance i may record connections: its deadline has
-- not passed. An instance that is no longer alive is one any sweeper may
-- empty at any moment.
local function alive(p, i, now)
  local deadline = redis.call('ZSCORE', instances_key(p), i)
  return deadline ~= false and tonumber(deadline) >= now, deadline ~= false
end

-- drop removes connection conn from channel c, if it is recorded there for
-- instance only (for any instance when only is nil). It returns the user id
-- ('' when nothing was dropped) and whether that was the user's last
-- connection in c, which the caller reports: the one script that drops the
-- last connection is the only one that can see it as last.
local function drop(p, c, conn, only)
  local conns = channel_key(p, c, 'conns')
  local record = redis.call('HGET', conns, conn)
  if not record then return '', false end
  local i, user = string.match(record, '^(%S+) (.*)$')
  if only and i ~= only then return '', false end
  redis.call('HDEL', conns, conn)
  redis.call('ZREM', instance_key(p, i), entry(c, conn))
  local users = channel_key(p, c, 'users')
  if redis.call('HINCRBY', users, user, -1) > 0 then return user, false end
  redis.call('HDEL', users, user)
  redis.call('HDEL', channel_key(p, c, 'info'), user)
  return user, true
end

