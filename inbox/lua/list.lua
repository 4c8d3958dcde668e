-- list.lua: List (inbox/redis.go).
--
-- ARGV: user, now_ms, before (0: newest), limit, unread only ("1").
-- Returns: total, unread, more (1 if another match follows the page), then
--   the page's items. One entry past the page is looked up so Next is set
--   only when another matching entry exists.

local k = inbox_open(ARGV[1], ARGV[2])
local limit = tonumber(ARGV[4])
local upper = '+inf'
if ARGV[3] ~= '0' then upper = '(' .. ARGV[3] end
local index = k.seq
if ARGV[5] == '1' then index = k.unread end
local ids = redis.call('ZREVRANGEBYSCORE', index, upper, '-inf', 'LIMIT', 0, limit + 1)
local more = 0
if #ids > limit then
  more = 1
  ids[#ids] = nil
end
return inbox_items(k, ids, {redis.call('ZCARD', k.seq), redis.call('ZCARD', k.unread), more})
