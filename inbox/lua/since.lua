-- since.lua: Since (inbox/redis.go).
--
-- ARGV: user, now_ms, after.
-- Returns: 1 and the trimmed mark when retention dropped something after
--   the cursor; otherwise 0, the mark and the items after it, oldest first.

local k, st = inbox_open(ARGV[1], ARGV[2])
if tonumber(ARGV[3]) < st.trimmed then return {1, inbox_num(st.trimmed)} end
local ids = redis.call('ZRANGEBYSCORE', k.seq, '(' .. ARGV[3], '+inf')
return inbox_items(k, ids, {0, inbox_num(st.trimmed)})
