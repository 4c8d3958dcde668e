-- mark_read.lua: MarkRead (inbox/redis.go).
--
-- ARGV: user, now_ms, id, read time.
-- Returns: 0 (not found), or 1 (newly read) or 2 (already read) and the
--   item as it now is.

local k = inbox_open(ARGV[1], ARGV[2])
local item = redis.call('HGET', k.items, ARGV[3])
if not item then return {0} end
if redis.call('ZREM', k.unread, ARGV[3]) == 0 then return {2, item} end
item = inbox_mark_read(item, ARGV[4])
redis.call('HSET', k.items, ARGV[3], item)
return {1, item}
