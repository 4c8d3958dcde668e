-- operations.lua: what the store's own scripts share beyond chunk.lua; each
-- of them runs behind chunk.lua and this (inbox/redis.go).

local function inbox_open(user_id, now_ms)
  local k = inbox_keys(user_id)
  local st = inbox_state(k, tonumber(now_ms))
  inbox_trim_age(k, st, tonumber(now_ms))
  inbox_save(k, st)
  return k, st
end

local function inbox_items(k, ids, out)
  inbox_each_batch(ids, function(batch)
    local items = redis.call('HMGET', k.items, unpack(batch))
    for i = 1, #batch do out[#out + 1] = items[i] end
  end)
  return out
end

local function inbox_mark_read(item, at)
  local head, rest = string.match(item, '^({"seq":%d+,"ts":%-?%d+,"read_at":)null(.*)$')
  if not head then return item end
  return head .. '"' .. at .. '"' .. rest
end
