-- publish.lua: assign sequence numbers to notifications, store each, and
-- append its frame to the feed, as one step (broker/redis.go).
--
-- It runs after the inbox's chunk (inbox.Redis.AppendLua), which defines
--   local function inbox_append(user_id, id, seq, notification_json, now_ms)
-- storing a user-addressed notification exactly as inbox.Store.Append does.
-- That contract is proven by TestRedisBusPublishStoresWhatAppendStores
-- (broker/redis_test.go).
--
-- KEYS: none; keys are named from the prefix, so the bus needs one Redis
--   (or one shard), not a cluster.
-- ARGV: prefix, epoch candidate (used when the data has none), now (ms),
--   history max per channel, history max age (ms), feed max length, count,
--   publish time (µs, the publisher's clock: the start of the delivery
--   latency every instance measures), how long (ms) to remember the first
--   notification's id against a second run, then per notification:
--   user id, id, the connection it excludes ("" for none: Laravel's
--   toOthers), JSON, channel count, channels.
-- Returns: {epoch, first sequence number, 0}; or, when the first
--   notification's id was published within that time (a retry of a publish
--   whose answer was lost), {epoch, the first run's first sequence number, 1}.
--
-- Sequence numbers are read, not incremented, until every store has
-- succeeded: a script that fails half-way keeps the writes it made, and an
-- inbox that refuses the first notification must leave bus:seq untouched.

local prefix = ARGV[1]
local epoch_key = prefix .. 'bus:epoch'
local epoch = redis.call('GET', epoch_key)
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', epoch_key, epoch)
end
local now = tonumber(ARGV[3])
local max_per_channel = tonumber(ARGV[4])
local max_age = tonumber(ARGV[5])
local feed_max = ARGV[6]
local count = tonumber(ARGV[7])
local published = ARGV[8]
local once_ttl = tonumber(ARGV[9])
local seq = tonumber(redis.call('GET', prefix .. 'bus:seq') or '0')
local first = seq + 1

-- Lua 5.1 writes a number from 10^14 up as 1e+14 when it is concatenated:
-- format sequence numbers and times explicitly.
local function num(n) return string.format('%.0f', n) end

-- A notification id published a moment ago is the retry of a publish whose
-- answer was lost (a timeout, a reset): answer what the first run did.
local once_key = prefix .. 'bus:once:{' .. ARGV[11] .. '}'
if once_ttl > 0 then
  local done = redis.call('GET', once_key)
  if done then return {epoch, done, 1} end
end

local function history_append(ch, seq, body)
  local key = prefix .. 'history:{' .. ch .. '}'
  local meta = key .. ':meta'
  redis.call('ZADD', key, seq, num(now) .. ' ' .. body)
  redis.call('HSET', meta, 'last', seq)
  local trimmed = nil
  if max_per_channel > 0 then
    local excess = redis.call('ZCARD', key) - max_per_channel
    if excess > 0 then
      local dropped = redis.call('ZRANGE', key, excess - 1, excess - 1, 'WITHSCORES')
      trimmed = tonumber(dropped[2])
      redis.call('ZREMRANGEBYRANK', key, 0, excess - 1)
    end
  end
  if max_age > 0 then
    while true do
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      if #oldest == 0 then break end
      local at = tonumber(string.match(oldest[1], '^(%d+) '))
      if at >= now - max_age then break end
      trimmed = math.max(trimmed or 0, tonumber(oldest[2]))
      redis.call('ZREMRANGEBYRANK', key, 0, 0)
    end
    -- A channel nobody broadcasts on any more disappears with its
    -- entries. Its meta stays (a few dozen bytes per channel ever used),
    -- so a cursor from before can still be told it is too old.
    redis.call('PEXPIRE', key, max_age)
  end
  if trimmed then
    local old = tonumber(redis.call('HGET', meta, 'trimmed') or '0')
    if trimmed > old then redis.call('HSET', meta, 'trimmed', trimmed) end
  end
end

local i = 10
for k = 0, count - 1 do
  local s = first + k
  local user, id, exclude, body, nch = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  -- The feed carries the channels as "<byte length>:<name>" each, one after
  -- the other: a name may hold ',' or ';' (Laravel, Pusher) or any byte,
  -- so no separator could be trusted (feedChannels in redis_feed.go reads it).
  local channels, listed = {}, {}
  for c = 1, nch do
    channels[c] = ARGV[i + 4 + c]
    listed[c] = #channels[c] .. ':' .. channels[c]
  end
  i = i + 5 + nch
  if user ~= '' then
    inbox_append(user, id, s, body, now)
  else
    for _, ch in ipairs(channels) do history_append(ch, s, body) end
  end
  local cursor = epoch .. '-' .. num(s)
  local frame = '{"event":"notification","cursor":"' .. cursor .. '",' .. string.sub(body, 2)
  redis.call('XADD', prefix .. 'bus:feed', 'MAXLEN', '~', feed_max, num(s) .. '-0',
    'k', 'n', 'i', id, 'u', user, 'x', exclude, 'c', table.concat(listed), 'r', cursor, 't', published, 'f', frame)
end
redis.call('SET', prefix .. 'bus:seq', first + count - 1)
if once_ttl > 0 then redis.call('SET', once_key, num(first), 'PX', once_ttl) end
return {epoch, first, 0}
