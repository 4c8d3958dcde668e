-- list.lua: read the pending items, or one user's (schedule/redis_items.go).
--
-- ARGV: prefix, user id or "".
-- Returns: the pending items' JSON (the caller sorts them).

local user = ARGV[2]
local ids
if user == '' then ids = redis.call('ZRANGE', DUE, 0, -1) else ids = redis.call('ZRANGE', userkey(user), 0, -1) end
local out = {}
for _, id in ipairs(ids) do
  if user == '' or redis.call('ZSCORE', DUE, id) then
    local json = redis.call('HGET', ITEMS, id)
    if json then out[#out + 1] = json end
  end
end
return out
