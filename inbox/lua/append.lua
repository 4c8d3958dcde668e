-- append.lua: Append (inbox/redis.go).
--
-- ARGV: now_ms, then user, id, seq, JSON for each notification.
-- Returns: 0.

local now_ms = tonumber(ARGV[1])
for i = 2, #ARGV, 4 do
  inbox_append(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], now_ms)
end
return 0
