-- leave.lua: remove a connection from a channel (presence/redis.go, Leave).
--
-- KEYS: none; keys are named from the prefix (prelude.lua).
-- ARGV: prefix, channel, connection id.
-- Returns: {user id or '' when the connection was not in the channel,
--   1 when that was the user's last connection there, else 0}.

local user, last = drop(ARGV[1], ARGV[2], ARGV[3], nil)
if last then return {user, 1} end
return {user, 0}
