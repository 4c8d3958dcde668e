-- replay.lua: read the broadcasts of channels with after < seq <= head, as
-- one step with their retention marks (broker/redis_replay.go).
--
-- KEYS: bus:epoch.
-- ARGV: prefix, after, head, channels...
-- Returns: the epoch ("" if none), then per channel: the highest sequence
--   number that is gone (trimmed, or every entry if the history expired
--   whole), then its entries "<ms> <json>" with their scores.

local out = {redis.call('GET', KEYS[1]) or ''}
local prefix, after, head = ARGV[1], ARGV[2], ARGV[3]
for i = 4, #ARGV do
  local key = prefix .. 'history:{' .. ARGV[i] .. '}'
  local meta = redis.call('HMGET', key .. ':meta', 'trimmed', 'last')
  local gone = tonumber(meta[1] or '0')
  if redis.call('EXISTS', key) == 0 and meta[2] then
    gone = math.max(gone, tonumber(meta[2]))
  end
  table.insert(out, gone)
  table.insert(out, redis.call('ZRANGEBYSCORE', key, '(' .. after, head, 'WITHSCORES'))
end
return out
