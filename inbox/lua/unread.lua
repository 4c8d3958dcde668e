-- unread.lua: Unread (inbox/redis.go).
--
-- ARGV: user, now_ms.
-- Returns: the number of unread entries.

local k = inbox_open(ARGV[1], ARGV[2])
return redis.call('ZCARD', k.unread)
