-- cancel.lua: remove a pending item (schedule/redis_items.go).
--
-- ARGV: prefix, id.
-- Returns: {item JSON} of the removed item, or {} when it is not pending
--   (claimed items are not: they left the due index).

local id = ARGV[2]
if redis.call('ZREM', DUE, id) == 0 then return {} end
local json = redis.call('HGET', ITEMS, id)
redis.call('DEL', trigger(id))
forget(id)
if not json then return {} end
return {json}
