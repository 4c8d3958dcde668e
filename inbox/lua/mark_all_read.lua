-- mark_all_read.lua: MarkAllRead (inbox/redis.go).
--
-- ARGV: user, now_ms, read time.
-- Returns: how many entries changed.

local k = inbox_open(ARGV[1], ARGV[2])
local ids = redis.call('ZRANGE', k.unread, 0, -1)
inbox_each_batch(ids, function(batch)
  local items = redis.call('HMGET', k.items, unpack(batch))
  local fields = {}
  for i = 1, #batch do
    if items[i] then
      fields[#fields + 1] = batch[i]
      fields[#fields + 1] = inbox_mark_read(items[i], ARGV[3])
    end
  end
  if #fields > 0 then redis.call('HSET', k.items, unpack(fields)) end
end)
redis.call('DEL', k.unread)
return #ids
