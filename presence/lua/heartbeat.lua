-- heartbeat.lua: renew an instance's deadline while it is alive
-- (presence/redis_run.go, Run).
--
-- KEYS: none; keys are named from the prefix (prelude.lua).
-- ARGV: prefix, instance id, lapse (ms), '1' if the id may be new (this
--   instance has not yet seen Redis know it), else '0'.
-- Returns: 1 when the deadline is now + lapse; 0 when the instance lapsed:
--   its deadline passed (or it vanished) before this renewal, so sweepers
--   may already have removed its connections, and it must not go on as if
--   nothing happened.

local p, i, lapse, may_be_new = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local now = now_ms()
local ok, known = alive(p, i, now)
if not ok and (known or may_be_new ~= '1') then return 0 end
redis.call('ZADD', instances_key(p), ms(now + lapse), i)
return 1
