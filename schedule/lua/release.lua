-- release.lua: put a claimed item back, pending (schedule/redis_fire.go).
--
-- ARGV: prefix, id, claim token, due (ms).
-- Returns: 1; 0 when the claim no longer holds the item.

local id, token = ARGV[2], ARGV[3]
if not holds(id, token) then return 0 end
redis.call('ZREM', INFLIGHT, id)
redis.call('HDEL', CLAIMS, id)
arm(id, tonumber(ARGV[4]), nowms())
return 1
