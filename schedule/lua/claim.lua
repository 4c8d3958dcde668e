-- claim.lua: take due items for firing, with a lease (schedule/redis_fire.go).
--
-- ARGV: prefix, claim token, lease (ms), limit, ids...
--   With ids, the bound is the latest due time among those still pending
--   (an expired trigger proves its item, and anything due before it, is
--   due); without, now. Either way only items strictly past due (the rule
--   Redis expires keys by) are taken, earliest first.
-- Returns: id, item JSON, due (ms) for each claimed item.

local token, lease, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = nowms()
local bound = now - 1
if #ARGV > 4 then
  local latest
  for i = 5, #ARGV do
    local s = redis.call('ZSCORE', DUE, ARGV[i])
    if s then
      s = tonumber(s)
      if not latest or s > latest then latest = s end
    end
  end
  if not latest then return {} end
  if latest < bound then bound = latest end
end
local due = redis.call('ZRANGEBYSCORE', DUE, '-inf', bound, 'WITHSCORES', 'LIMIT', 0, limit)
local out = {}
for i = 1, #due, 2 do
  local id, at = due[i], due[i + 1]
  redis.call('ZREM', DUE, id)
  redis.call('DEL', trigger(id))
  local json = redis.call('HGET', ITEMS, id)
  if json then
    redis.call('ZADD', INFLIGHT, now + lease, id)
    redis.call('HSET', CLAIMS, id, token .. '|' .. at)
    out[#out + 1] = id
    out[#out + 1] = json
    out[#out + 1] = at
  end
end
return out
