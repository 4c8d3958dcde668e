-- beat.lua: record an instance's latest report (instances/redis.go).
--
-- KEYS: none; under the prefix p:
--   p..'instances'                 SET the ids of instances that beat
--   p..'instance:{'..id..'}'       STRING the latest report (JSON), expiring
--                                  lapse ms after the beat, on Redis's clock
-- ARGV: prefix, id, report, lapse (ms).
-- Returns: 0.
local p, id = ARGV[1], ARGV[2]
redis.call('SET', p .. 'instance:{' .. id .. '}', ARGV[3], 'PX', ARGV[4])
redis.call('SADD', p .. 'instances', id)
return 0
