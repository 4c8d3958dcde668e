-- index.lua: put items into sched:at that an older version stored without
-- it (schedule/redis_list.go).
--
-- ARGV: prefix, then id, ScheduledAt (ms) pairs.
-- Returns: how many it indexed: those still stored and not indexed yet.

local n = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HEXISTS', ITEMS, id) == 1 and not redis.call('ZSCORE', AT, id) then
    redis.call('ZADD', AT, ARGV[i + 1], id)
    n = n + 1
  end
end
return n
