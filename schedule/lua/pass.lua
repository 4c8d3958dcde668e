-- pass.lua: one pass of an instance's timer (schedule/redis_run.go).
--
-- Touches the trigger of every item due in [from, now) (EXISTS on an
-- expired key makes Redis delete it and publish "expired"); with check
-- stale, lists items due before now - grace whose trigger is gone; puts
-- back items whose lease has run out, due as they were.
--
-- ARGV: prefix, from (ms, or -inf), local now (ms), check stale (1 or 0),
--   overdue grace (ms), limit.
-- Returns: {touched, still alive, resume from, oldest due, next due, next
--   lease end, reclaimed ids, stale ids}; a missing time is "".

local now, grace, limit = tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])
local due = redis.call('ZRANGEBYSCORE', DUE, ARGV[2], '(' .. ARGV[3], 'WITHSCORES', 'LIMIT', 0, limit)
local alive, resume = 0, ARGV[3]
for i = 1, #due, 2 do
  if redis.call('EXISTS', trigger(due[i])) == 1 then
    if alive == 0 then resume = due[i + 1] end
    alive = alive + 1
  end
end
if alive == 0 and #due / 2 >= limit then resume = due[#due] end
local stale = {}
if ARGV[4] == '1' then
  local old = redis.call('ZRANGEBYSCORE', DUE, '-inf', '(' .. (now - grace), 'LIMIT', 0, limit)
  for _, id in ipairs(old) do
    if redis.call('EXISTS', trigger(id)) == 0 then stale[#stale + 1] = id end
  end
end
local rnow = nowms()
local expired = redis.call('ZRANGEBYSCORE', INFLIGHT, '-inf', '(' .. rnow, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  local c = redis.call('HGET', CLAIMS, id)
  local at = c and tonumber(string.match(c, '|(%d+)$')) or (rnow - 1)
  redis.call('ZREM', INFLIGHT, id)
  redis.call('HDEL', CLAIMS, id)
  arm(id, at, rnow)
end
local oldest = redis.call('ZRANGE', DUE, 0, 0, 'WITHSCORES')
local nd = redis.call('ZRANGEBYSCORE', DUE, ARGV[3], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local nl = redis.call('ZRANGE', INFLIGHT, 0, 0, 'WITHSCORES')
return {#due / 2, alive, resume, oldest[2] or '', nd[2] or '', nl[2] or '', expired, stale}
