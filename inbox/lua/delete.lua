-- delete.lua: Delete (inbox/redis.go).
--
-- ARGV: user, now_ms, id.
-- Returns: 1 if it was there, else 0. A user's deletion does not move the
--   trimmed mark: a deleted entry is one the user no longer wants replayed.

local k = inbox_open(ARGV[1], ARGV[2])
if redis.call('HDEL', k.items, ARGV[3]) == 0 then return 0 end
redis.call('ZREM', k.seq, ARGV[3])
redis.call('ZREM', k.unread, ARGV[3])
return 1
