-- list.lua: the latest reports of the live instances, forgetting the ids of
-- those whose report expired (instances/redis.go; keys as in beat.lua).
--
-- KEYS: none. ARGV: prefix.
-- Returns: the reports (JSON), in no order.
local p = ARGV[1]
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', p .. 'instances')) do
  local report = redis.call('GET', p .. 'instance:{' .. id .. '}')
  if report then
    out[#out + 1] = report
  else
    redis.call('SREM', p .. 'instances', id)
  end
end
return out
