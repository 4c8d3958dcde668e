-- leave.lua: take an instance off the list (instances/redis.go; keys as in
-- beat.lua).
--
-- KEYS: none. ARGV: prefix, id.
-- Returns: 0.
local p, id = ARGV[1], ARGV[2]
redis.call('DEL', p .. 'instance:{' .. id .. '}')
redis.call('SREM', p .. 'instances', id)
return 0
