-- get.lua: read a pending item (schedule/redis_items.go).
--
-- ARGV: prefix, id.
-- Returns: {item JSON} for a pending item, else {}.

local id = ARGV[2]
if not redis.call('ZSCORE', DUE, id) then return {} end
local json = redis.call('HGET', ITEMS, id)
if not json then return {} end
return {json}
