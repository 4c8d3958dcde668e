-- notify_user.lua: append a control frame for a user's connections to the
-- feed, after the newest notification (broker/redis.go, NotifyUser).
--
-- KEYS: bus:seq, bus:feed.
-- ARGV: feed max length, user id, frame (JSON).
-- Returns: the feed entry id, <seq>-N.

local seq = redis.call('GET', KEYS[1]) or '0'
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-*', 'k', 'u', 'u', ARGV[2], 'f', ARGV[3])
