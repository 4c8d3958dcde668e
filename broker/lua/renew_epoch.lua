-- renew_epoch.lua: replace the epoch only if it is still the one the caller
-- saw, so instances noticing the same rollback agree on one new epoch
-- (broker/redis_feed.go, renewEpoch).
--
-- KEYS: bus:epoch.
-- ARGV: the epoch seen, the new one.
-- Returns: the epoch now in force.

if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])
