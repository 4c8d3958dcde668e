-- ack.lua: delete fired items, those their claims still hold
-- (schedule/redis_fire.go).
--
-- ARGV: prefix, then id, claim token pairs.
-- Returns: the ids no longer held (their lease ran out: another instance
--   may fire them again).

local lost = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if holds(id, token) then
    redis.call('ZREM', INFLIGHT, id)
    redis.call('HDEL', CLAIMS, id)
    forget(id)
  else
    lost[#lost + 1] = id
  end
end
return lost
