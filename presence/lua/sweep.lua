-- sweep.lua: remove the connections of instances whose deadline passed
-- (presence/redis_run.go, Run), a bounded batch at a time.
--
-- KEYS: none; keys are named from the prefix (prelude.lua).
-- ARGV: prefix, most connections to remove in this call.
-- Returns: {1 if more may be left to sweep else 0, then channel and user id
--   of every member removed}, each member being one whose last connection
--   went: no other call, on any instance, reports the same removal.
--
-- An instance leaves the instances set once its index is empty, so a dead
-- instance costs one ZRANGEBYSCORE entry until it is swept.

local p, budget = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local lookup = 16
local dead = redis.call('ZRANGEBYSCORE', instances_key(p), '-inf', '(' .. ms(now), 'LIMIT', 0, lookup)
local out = {0}
if #dead == lookup then out[1] = 1 end
for _, i in ipairs(dead) do
  if budget <= 0 then
    out[1] = 1
    break
  end
  local index = instance_key(p, i)
  local entries = redis.call('ZRANGE', index, 0, budget - 1)
  for _, e in ipairs(entries) do
    local c, conn = split_entry(e)
    local user, last = drop(p, c, conn, i)
    if last then
      out[#out + 1] = c
      out[#out + 1] = user
    end
    -- drop has removed the entry unless the connection had moved on
    -- (left, or taken over by a live instance): then it goes here.
    redis.call('ZREM', index, e)
  end
  budget = budget - #entries
  if redis.call('EXISTS', index) == 0 then
    redis.call('ZREM', instances_key(p), i)
  else
    out[1] = 1
  end
end
return out
