-- join.lua: record a connection in a channel as a user (presence/redis.go,
-- Join).
--
-- KEYS: none; keys are named from the prefix (prelude.lua).
-- ARGV: prefix, channel, connection id, instance id, lapse (ms), '1' if the
--   instance id may be new, else '0', user id, user_info JSON ('' for none),
--   max members.
-- Returns: {0, added (1 or 0), then user id and info of every member};
--   {1} when the channel is full; {2} when the instance lapsed (as in
--   heartbeat.lua; nothing recorded); {3} when the connection is in the
--   channel as another user.
--
-- An instance id Redis does not know yet is registered with a deadline of
-- now + lapse, so joins made before Run's first heartbeat are not swept. A
-- connection recorded for another instance of the same user (this one's
-- own earlier id, before a lapse) moves to this instance without changing
-- membership, so a caller re-joining after Lapsed causes no flicker.

local p, c, conn, i = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lapse, may_be_new, user, info, max = tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local now = now_ms()
local ok, known = alive(p, i, now)
if not ok then
  if known or may_be_new ~= '1' then return {2} end
  redis.call('ZADD', instances_key(p), ms(now + lapse), i)
end

local conns = channel_key(p, c, 'conns')
local users = channel_key(p, c, 'users')
local infos = channel_key(p, c, 'info')
local record = redis.call('HGET', conns, conn)
local added = 0
if record then
  local was, was_user = string.match(record, '^(%S+) (.*)$')
  if was_user ~= user then return {3} end
  if was ~= i then
    redis.call('ZREM', instance_key(p, was), entry(c, conn))
    redis.call('ZADD', instance_key(p, i), 0, entry(c, conn))
    redis.call('HSET', conns, conn, i .. ' ' .. user)
  end
else
  if redis.call('HEXISTS', users, user) == 0 then
    if redis.call('HLEN', users) >= max then return {1} end
    added = 1
  end
  redis.call('HSET', conns, conn, i .. ' ' .. user)
  redis.call('HINCRBY', users, user, 1)
  redis.call('ZADD', instance_key(p, i), 0, entry(c, conn))
end
redis.call('HSET', infos, user, info)

local out = {0, added}
local all = redis.call('HGETALL', infos)
for k = 1, #all do out[k + 2] = all[k] end
return out
