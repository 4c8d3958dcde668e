-- notify.lua: append a control frame for a user's connections, or for a
-- channel's, to the feed, after the newest notification (broker/redis.go,
-- NotifyUser and NotifyChannel).
--
-- KEYS: bus:seq, bus:feed.
-- ARGV: feed max length, kind ('u': a user's, 'c': a channel's), the user
--   id or channel, frame (JSON or a transport's own message); for 'c' also
--   the frame's event, the one transport that carries it ("" for all), and
--   the connection it skips ("" for none).
-- Returns: the feed entry id, <seq>-N.
--
-- The id is <seq>-N with N one past the newest entry's when that one is
-- also under seq (the notification <seq>-0, or an earlier control frame),
-- and 0 otherwise; 0-0 is not an id a stream accepts, so with nothing
-- published yet it is 0-1. That is what XADD's "<seq>-*" does, written out:
-- that form came in Redis 7.0, and the service runs on 6.0. Trimming
-- (MAXLEN ~) never removes the newest entry, so the newest entry is the
-- last id the stream handed out.

local seq = redis.call('GET', KEYS[1]) or '0'
local n = 0
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #newest > 0 then
  local ms, s = string.match(newest[1][1], '^(%d+)-(%d+)$')
  if ms == seq then n = tonumber(s) + 1 end
end
if seq == '0' and n == 0 then n = 1 end
local id = seq .. '-' .. string.format('%.0f', n)
if ARGV[2] == 'c' then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], id, 'k', 'c', 'ch', ARGV[3], 'f', ARGV[4],
    'e', ARGV[5], 'o', ARGV[6], 'x', ARGV[7])
end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], id, 'k', 'u', 'u', ARGV[3], 'f', ARGV[4])
