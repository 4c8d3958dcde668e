-- add.lua: store a pending item and arm its trigger (schedule/redis_items.go).
--
-- ARGV: prefix, id, item JSON, due (ms), ScheduledAt (ms), user ids...
-- Returns: 1; 0 when the id is already pending or in flight.

local id = ARGV[2]
if redis.call('HEXISTS', ITEMS, id) == 1 then return 0 end
redis.call('HSET', ITEMS, id, ARGV[3])
if #ARGV > 5 then
  local users = {}
  for i = 6, #ARGV do
    users[#users + 1] = ARGV[i]
    redis.call('ZADD', userkey(ARGV[i]), ARGV[5], id)
  end
  redis.call('HSET', USERS, id, cjson.encode(users))
end
arm(id, tonumber(ARGV[4]), nowms())
return 1
