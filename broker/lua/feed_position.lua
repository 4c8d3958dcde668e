-- feed_position.lua: read where the feed stands, as one step
-- (broker/redis_feed.go, resync).
--
-- KEYS: bus:epoch, bus:seq, bus:feed.
-- ARGV: epoch candidate, set when the data has none (first start, or Redis
--   lost it).
-- Returns: {epoch, last sequence number handed out, id of the newest feed
--   entry or "0-0"}.

local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local seq = redis.call('GET', KEYS[2]) or '0'
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
return {epoch, seq, id}
