-- list.lua: one page of the pending items, or of one user's, with their
-- count (schedule/redis_list.go).
--
-- ARGV: prefix, user id or "", limit, after: ScheduledAt (ms) or "", id.
--   The index read (the user's, or sched:at) scores ids by ScheduledAt
--   (ms), and Redis orders equal scores by member: the listing order. The
--   page starts after the cursor, found by rank (O(log² n)) whether or not
--   its item is still there; items in flight are in the index but not
--   pending, and are skipped.
-- Returns: {total pending matching, item JSON...}, at most limit + 1
--   items: one more than the page says another page follows.

local user, limit, after, afterID = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local index = AT
if user ~= '' then index = userkey(user) end

-- The first rank placed after (after, afterID): past every lower score,
-- then, among the ids scored after, past those up to afterID (binary
-- search: equal scores are in id order).
local rank = 0
if after ~= '' then
  local lo = redis.call('ZCOUNT', index, '-inf', '(' .. after)
  local hi = lo + redis.call('ZCOUNT', index, after, after)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if redis.call('ZRANGE', index, mid, mid)[1] <= afterID then lo = mid + 1 else hi = mid end
  end
  rank = lo
end

local total
if user == '' then
  total = redis.call('ZCARD', DUE)
else
  -- The user's index holds its items in flight too: count the pending
  -- ones from whichever side is smaller.
  local stored, inflight = redis.call('ZCARD', index), redis.call('ZCARD', INFLIGHT)
  if stored <= inflight then
    total = 0
    for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
      if redis.call('ZSCORE', DUE, id) then total = total + 1 end
    end
  else
    total = stored
    for _, id in ipairs(redis.call('ZRANGE', INFLIGHT, 0, -1)) do
      if redis.call('ZSCORE', index, id) then total = total - 1 end
    end
  end
end

local out, want = {tostring(total)}, limit + 1
while #out <= want do
  local ids = redis.call('ZRANGE', index, rank, rank + want - #out)
  if #ids == 0 then break end
  rank = rank + #ids
  for _, id in ipairs(ids) do
    if redis.call('ZSCORE', DUE, id) then
      local json = redis.call('HGET', ITEMS, id)
      if json then out[#out + 1] = json end
    elseif index == AT and redis.call('HEXISTS', ITEMS, id) == 0 then
      -- Neither pending nor in flight: left by an instance of a version
      -- that did not keep this index when it forgot the item.
      redis.call('ZREM', AT, id)
      rank = rank - 1
    end
    if #out > want then break end
  end
end
return out
