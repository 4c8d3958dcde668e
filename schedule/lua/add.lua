-- add.lua: store a pending item and arm its trigger, within the bounds
-- (schedule/redis_items.go).
--
-- ARGV: prefix, id, item JSON, due (ms), ScheduledAt (ms), per-user bound,
--   total bound (0: no bound), user ids...
--   The bounds count the items stored, pending or in flight: the items
--   hash, and each user's index.
-- Returns: {'ok'}; {'duplicate'} when the id is already pending or in
--   flight; {'total'} when the scheduler holds the total bound already;
--   {'user', user id} for the first user holding the per-user bound
--   already. Only 'ok' changes anything.

local id, perUser, total = ARGV[2], tonumber(ARGV[6]), tonumber(ARGV[7])
if redis.call('HEXISTS', ITEMS, id) == 1 then return {'duplicate'} end
if total > 0 and redis.call('HLEN', ITEMS) >= total then return {'total'} end
if perUser > 0 then
  for i = 8, #ARGV do
    if redis.call('ZCARD', userkey(ARGV[i])) >= perUser then return {'user', ARGV[i]} end
  end
end
redis.call('HSET', ITEMS, id, ARGV[3])
redis.call('ZADD', AT, ARGV[5], id)
if #ARGV > 7 then
  local users = {}
  for i = 8, #ARGV do
    users[#users + 1] = ARGV[i]
    redis.call('ZADD', userkey(ARGV[i]), ARGV[5], id)
  end
  redis.call('HSET', USERS, id, cjson.encode(users))
end
arm(id, tonumber(ARGV[4]), nowms())
return {'ok'}
