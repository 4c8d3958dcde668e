-- chunk.lua: the inbox's append code, shared with the bus's publish script
-- (inbox/redis.go, AppendLua; broker/lua/publish.lua runs it). It follows
-- three literals appendChunk writes in front of it: inbox_prefix,
-- inbox_max_per_user and inbox_max_age_ms. It defines only locals named
-- inbox_*, reads nothing of the script it is part of, and returns nothing.
--
-- inbox_append(user_id, id, seq, notification_json, now_ms) stores one
-- notification exactly as Append does; TestRedisBusPublishStoresWhatAppendStores
-- (broker/redis_test.go) holds that contract.
--
-- Numbers go through inbox_num before reaching Redis, because redis.call
-- prints a Lua number with 14 significant digits, which would round a long
-- Seq.

local function inbox_keys(user_id)
  local base = inbox_prefix .. 'inbox:{' .. user_id .. '}:'
  return {seq = base .. 'seq', items = base .. 'items', unread = base .. 'unread', meta = base .. 'meta'}
end

local function inbox_num(n)
  return string.format('%.0f', n)
end

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
-- days_from_civil): Redis's Lua has no os.time.
local function inbox_days(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Unix milliseconds of an RFC 3339 time, or nil.
local function inbox_time_ms(s)
  local y, mo, d, h, mi, sec, rest = string.match(s, '^(%d%d%d%d)-(%d%d)-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$')
  if not y then return nil end
  local ms = 0
  local frac, zone = string.match(rest, '^%.(%d+)(.*)$')
  if frac then
    ms = tonumber(string.sub(frac .. '00', 1, 3))
    rest = zone
  end
  local offset = 0
  if rest ~= 'Z' and rest ~= 'z' then
    local sign, oh, om = string.match(rest, '^([+-])(%d%d):(%d%d)$')
    if not sign then return nil end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60000
    if sign == '-' then offset = -offset end
  end
  local days = inbox_days(tonumber(y), tonumber(mo), tonumber(d))
  return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60000 + tonumber(sec) * 1000 + ms - offset
end

-- The notification's timestamp in Unix ms. encoding/json writes Timestamp
-- as the last field, so the match is anchored at the end of the object and
-- a "timestamp" inside data cannot be mistaken for it; any other encoder
-- falls back to a full decode.
local function inbox_timestamp_ms(notification_json)
  local s = string.match(notification_json, '"timestamp":"([^"]*)"%s*}%s*$')
  if not s then
    local ok, n = pcall(cjson.decode, notification_json)
    if ok and type(n) == 'table' and type(n.timestamp) == 'string' then s = n.timestamp end
  end
  return s and inbox_time_ms(s)
end

local function inbox_entry_ts(item)
  return tonumber(string.match(item, '^{"seq":%d+,"ts":(%-?%d+),'))
end

local function inbox_each_batch(ids, fn)
  for i = 1, #ids, 256 do
    fn({unpack(ids, i, math.min(i + 255, #ids))})
  end
end

-- inbox_forget removes ids from every key of the inbox.
local function inbox_forget(k, ids)
  inbox_each_batch(ids, function(batch)
    redis.call('ZREM', k.seq, unpack(batch))
    redis.call('ZREM', k.unread, unpack(batch))
    redis.call('HDEL', k.items, unpack(batch))
  end)
end

-- inbox_state reads the inbox's retention mark. If the TTLs ran out (now
-- past meta.expires and the index gone), the entries they took count as
-- trimmed: everything up to the newest Seq they held.
local function inbox_state(k, now_ms)
  local m = redis.call('HMGET', k.meta, 'trimmed', 'newest', 'expires')
  local st = {trimmed = tonumber(m[1]) or 0, newest = tonumber(m[2]), expires = tonumber(m[3]), dirty = false}
  if st.expires and now_ms > st.expires and redis.call('EXISTS', k.seq) == 0 then
    if st.newest and st.newest > st.trimmed then st.trimmed = st.newest end
    st.newest, st.expires = nil, nil
    redis.call('HDEL', k.meta, 'newest', 'expires')
    st.dirty = true
  end
  return st
end

local function inbox_dropped(st, seq)
  seq = tonumber(seq)
  if seq > st.trimmed then
    st.trimmed = seq
    st.dirty = true
  end
end

-- inbox_trim_age drops entries older than MaxAge from the oldest end, and
-- stops at the first young one: an entry out of timestamp order waits for
-- the older-Seq entries ahead of it, so only a prefix is ever dropped.
local function inbox_trim_age(k, st, now_ms)
  if inbox_max_age_ms <= 0 then return end
  local cutoff = now_ms - inbox_max_age_ms
  while true do
    local oldest = redis.call('ZRANGE', k.seq, 0, 0, 'WITHSCORES')
    if #oldest == 0 then return end
    local ts = inbox_entry_ts(redis.call('HGET', k.items, oldest[1]) or '')
    if ts and ts >= cutoff then return end
    inbox_forget(k, {oldest[1]})
    inbox_dropped(st, oldest[2])
  end
end

local function inbox_trim_count(k, st)
  if inbox_max_per_user <= 0 then return end
  local over = redis.call('ZCARD', k.seq) - inbox_max_per_user
  if over <= 0 then return end
  local drop = redis.call('ZRANGE', k.seq, 0, over - 1, 'WITHSCORES')
  local ids = {}
  for i = 1, #drop, 2 do ids[#ids + 1] = drop[i] end
  inbox_forget(k, ids)
  inbox_dropped(st, drop[#drop])
end

local function inbox_save(k, st)
  if st.dirty and st.trimmed > 0 then
    redis.call('HSET', k.meta, 'trimmed', inbox_num(st.trimmed))
  end
end

local function inbox_append(user_id, id, seq, notification_json, now_ms)
  if user_id == nil or user_id == false or user_id == '' then return end
  seq, now_ms = tonumber(seq), tonumber(now_ms)
  if not seq then error('inbox_append: seq is not a number') end
  if not now_ms then error('inbox_append: now_ms is not a number') end
  if type(id) ~= 'string' or id == '' then error('inbox_append: empty notification id') end
  local rest = type(notification_json) == 'string' and string.match(notification_json, '^%s*{(.*)$')
  if not rest then error('inbox_append: notification ' .. id .. ' is not a JSON object') end
  -- A timestamp that cannot be read is taken as now rather than failing
  -- the publish it is part of.
  local ts = inbox_timestamp_ms(notification_json) or now_ms
  local entry = '{"seq":' .. inbox_num(seq) .. ',"ts":' .. inbox_num(ts) .. ',"read_at":null'
  if string.match(rest, '^%s*}') then entry = entry .. rest else entry = entry .. ',' .. rest end

  local k = inbox_keys(user_id)
  local st = inbox_state(k, now_ms)
  -- A repeated id replaces the earlier entry: both indexes are keyed by
  -- id, so the new Seq and unread state simply take its place.
  redis.call('HSET', k.items, id, entry)
  redis.call('ZADD', k.seq, inbox_num(seq), id)
  redis.call('ZADD', k.unread, inbox_num(seq), id)
  inbox_trim_count(k, st)
  inbox_trim_age(k, st, now_ms)
  if inbox_max_age_ms > 0 then
    -- The keys outlive the newest entry's age by a millisecond, so they
    -- vanish only once retention would have dropped everything in them.
    local expires = math.max(now_ms, ts) + inbox_max_age_ms + 1
    if st.expires and st.expires > expires then expires = st.expires end
    local ttl = inbox_num(expires - now_ms)
    redis.call('PEXPIRE', k.seq, ttl)
    redis.call('PEXPIRE', k.items, ttl)
    redis.call('PEXPIRE', k.unread, ttl)
    if not st.newest or seq > st.newest then st.newest = seq end
    redis.call('HSET', k.meta, 'newest', inbox_num(st.newest), 'expires', inbox_num(expires))
  end
  inbox_save(k, st)
end
