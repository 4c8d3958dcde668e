package inbox

// The Redis store keeps every inbox in Redis so any instance can serve any
// user and a restart loses nothing. Each operation is one Lua script, so it
// is atomic with respect to every other (and to the Redis bus's publish
// script, which runs the same append code): counts, read state and the
// retention mark can never be seen half-updated.
//
// Keys, per user, under the configured prefix (the user id sits between
// braces, and each key ends in a fixed suffix, so no two users' keys can be
// equal whatever their ids contain: user "a}:seq" cannot reach user "a"'s
// keys, and all of a user's keys share one cluster hash tag):
//
//	<prefix>inbox:{<user>}:seq     ZSET  member id, score Seq: the position
//	                                     index that List and Since range over
//	<prefix>inbox:{<user>}:items   HASH  id -> stored entry (below)
//	<prefix>inbox:{<user>}:unread  ZSET  member id, score Seq, for unread ids
//	                                     only: Unread is ZCARD, and an unread
//	                                     page is a range like any other
//	<prefix>inbox:{<user>}:meta    HASH  trimmed: highest Seq retention
//	                                     dropped; newest, expires: see TTLs
//
// A stored entry is the notification's JSON, exactly as the bus encoded it,
// with three fields spliced in front so one json.Unmarshal gives the whole
// Entry and Lua never re-encodes the notification (cjson would turn an empty
// array in data into an object and round long numbers):
//
//	{"seq":<Seq>,"ts":<Timestamp, Unix ms>,"read_at":null|"<RFC 3339>",<notification fields>}
//
// ts is what age retention reads: Lua cannot parse dates cheaply over and
// over, so the timestamp is parsed once, on append.
//
// Retention runs inside the scripts, as the memory store's does: Append
// drops the oldest entries beyond MaxPerUser, then those older than MaxAge,
// and every other operation drops aged entries before it reads, so an inbox
// nobody writes to still ages out. Only a prefix (by Seq) is ever dropped,
// and meta.trimmed records its end, which is how Since knows a replay would
// have a gap.
//
// TTLs: with MaxAge set, Append gives seq, items and unread a TTL that runs
// out just after the newest entry would have aged out anyway, so an
// abandoned user's inbox disappears by itself. Reading, marking and deleting
// leave the TTLs alone: they make no entry younger. The meta key gets no TTL: it
// must outlive the entries, because once they have vanished it is the only
// thing that can tell Since that a cursor from before them has lost
// something (answering "nothing missed" would be a silent gap). So Append
// also records in meta the newest Seq the vanishing keys held and when they
// vanish; the first operation on the user after that moment finds the keys
// gone and folds newest into trimmed. meta is a few dozen bytes per user who
// ever received something, the same state the memory store keeps for a user
// whose inbox was trimmed. A user who deletes every entry and then waits out
// MaxAge is told "trimmed" for cursors from before the deletions: the safe
// side (the client refetches its inbox).
//
// Clock: scripts take "now" from the caller (this store's clock; the bus's
// for its appends) rather than Redis TIME, so instances agree as well as
// their clocks do, which is milliseconds against a MaxAge of hours or days,
// and tests can move time. Times are kept in milliseconds, as broker.Now
// gives them. Seq values must stay below 2^53: Redis scores and Lua numbers
// are doubles.
//
// Scripts compute key names from the prefix baked into them rather than
// receiving them as KEYS: the bus's publish script appends to many users'
// inboxes at once, which already needs a single Redis (or one shard), not a
// cluster.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/internal/redisconn"
)

// Redis is the Store of the distributed mode: inboxes in Redis, shared by
// every instance.
type Redis struct {
	client *redis.Client
	prefix redisconn.Prefix
	limits Limits
	now    func() time.Time // time.Now; tests replace it

	chunk       string
	append      *redis.Script
	list        *redis.Script
	since       *redis.Script
	unread      *redis.Script
	markRead    *redis.Script
	markAllRead *redis.Script
	delete      *redis.Script
}

var (
	_ Store              = (*Redis)(nil)
	_ broker.ScriptedLog = (*Redis)(nil) // the bus runs AppendLua's chunk
)

// NewRedis returns a store keeping inboxes under prefix in the Redis behind
// client, within limits. A zero field of limits leaves that dimension
// unbounded; MaxAge counts in whole milliseconds, rounded up.
func NewRedis(client *redis.Client, prefix redisconn.Prefix, limits Limits) *Redis {
	limits.MaxPerUser = max(limits.MaxPerUser, 0)
	limits.MaxAge = max(limits.MaxAge, 0)
	r := &Redis{client: client, prefix: prefix, limits: limits, now: time.Now}
	r.chunk = appendChunk(prefix, limits)
	script := func(body string) *redis.Script {
		return redis.NewScript(r.chunk + operationsLua + body)
	}
	r.append = script(appendLua)
	r.list = script(listLua)
	r.since = script(sinceLua)
	r.unread = script(unreadLua)
	r.markRead = script(markReadLua)
	r.markAllRead = script(markAllReadLua)
	r.delete = script(deleteLua)
	return r
}

// AppendLua returns the Lua chunk that appends to inboxes, for the bus to
// put in front of its own publish script, so that assigning a Seq, storing
// and delivering are one atomic step. The chunk only defines locals whose
// names start with "inbox_"; it reads neither KEYS nor ARGV and does not
// return. It defines
//
//	local function inbox_append(user_id, id, seq, notification_json, now_ms)
//
// which does for one notification exactly what Append does: store it unread
// in user_id's inbox, index it by seq, apply the store's Limits (baked into
// the chunk with the prefix) and set the keys' TTLs. notification_json is the
// JSON encoding of the broker.Notification (which leaves Seq out); seq and
// now_ms are numbers (or decimal strings) and now_ms is the caller's clock
// in Unix milliseconds. An empty user_id (a broadcast) does nothing. It
// returns nothing, and raises a Lua error only for a call that breaks this
// contract (seq or now_ms not a number, id empty, notification_json not a
// JSON object), checked before it writes anything for that notification,
// or when a Redis command fails. A script that calls it once per
// notification must make those checks hold for all of them: Redis does not
// roll back what a failed script already wrote.
//
// This is a contract with the bus's publish script (broker/lua/publish.lua),
// held by two tests: TestRedisAppendLuaInAnotherScript (inbox/redis_test.go)
// runs the chunk behind a script of its own, and
// TestRedisBusPublishStoresWhatAppendStores (broker/redis_test.go) proves
// that what the bus's publish script stores through it reads back, through
// List and Since, exactly as what Append stores.
func (r *Redis) AppendLua() string { return r.chunk }

// Append implements Store, as one script for all of ns.
func (r *Redis) Append(ctx context.Context, ns ...broker.Notification) error {
	args := make([]any, 1, 1+4*len(ns))
	args[0] = r.nowMS()
	for _, n := range ns {
		if n.UserID == "" {
			continue
		}
		body, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("inbox: append %s for %s: %w", n.ID, n.UserID, err)
		}
		args = append(args, n.UserID, n.ID, strconv.FormatUint(n.Seq, 10), body)
	}
	if len(args) == 1 {
		return nil
	}
	err := r.append.Run(ctx, r.client, nil, args...).Err()
	return redisconn.Wrap(fmt.Sprintf("inbox: append %d notifications", (len(args)-1)/4), err)
}

// List implements Store.
func (r *Redis) List(ctx context.Context, userID string, q Query) (Page, error) {
	if q.Limit < 1 {
		return Page{}, fmt.Errorf("inbox: list %s: limit %d is not positive", userID, q.Limit)
	}
	unreadOnly := "0"
	if q.UnreadOnly {
		unreadOnly = "1"
	}
	reply, err := r.list.Run(ctx, r.client, nil, userID, r.nowMS(),
		strconv.FormatUint(q.Before, 10), q.Limit, unreadOnly).Slice()
	if err != nil {
		return Page{}, redisconn.Wrap("inbox: list "+userID, err)
	}
	if len(reply) < 3 {
		return Page{}, fmt.Errorf("inbox: list %s: unexpected reply of %d values", userID, len(reply))
	}
	total, _ := reply[0].(int64)
	unread, _ := reply[1].(int64)
	more, _ := reply[2].(int64)
	page := Page{Total: int(total), Unread: int(unread)}
	for _, v := range reply[3:] {
		s, ok := v.(string)
		if !ok {
			continue // an index entry without its item: nothing to show
		}
		e, err := decodeEntry(s)
		if err != nil {
			return Page{}, fmt.Errorf("inbox: list %s: %w", userID, err)
		}
		page.Entries = append(page.Entries, e)
	}
	if more == 1 && len(page.Entries) > 0 {
		page.Next = page.Entries[len(page.Entries)-1].Seq
	}
	return page, nil
}

// MarkRead implements Store.
func (r *Redis) MarkRead(ctx context.Context, userID, id string, at time.Time) (Entry, bool, error) {
	reply, err := r.markRead.Run(ctx, r.client, nil, userID, r.nowMS(), id, formatReadAt(at)).Slice()
	if err != nil {
		return Entry{}, false, redisconn.Wrap(fmt.Sprintf("inbox: mark read %s for %s", id, userID), err)
	}
	code, _ := reply[0].(int64)
	if code == 0 || len(reply) < 2 {
		return Entry{}, false, fmt.Errorf("inbox: mark read %s for %s: %w", id, userID, ErrNotFound)
	}
	s, _ := reply[1].(string)
	e, err := decodeEntry(s)
	if err != nil {
		return Entry{}, false, fmt.Errorf("inbox: mark read %s for %s: %w", id, userID, err)
	}
	return e, code == 1, nil
}

// MarkAllRead implements Store.
func (r *Redis) MarkAllRead(ctx context.Context, userID string, at time.Time) (int, error) {
	n, err := r.markAllRead.Run(ctx, r.client, nil, userID, r.nowMS(), formatReadAt(at)).Int()
	if err != nil {
		return 0, redisconn.Wrap("inbox: mark all read for "+userID, err)
	}
	return n, nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, userID, id string) error {
	n, err := r.delete.Run(ctx, r.client, nil, userID, r.nowMS(), id).Int()
	if err != nil {
		return redisconn.Wrap(fmt.Sprintf("inbox: delete %s for %s", id, userID), err)
	}
	if n == 0 {
		return fmt.Errorf("inbox: delete %s for %s: %w", id, userID, ErrNotFound)
	}
	return nil
}

// Unread implements Store.
func (r *Redis) Unread(ctx context.Context, userID string) (int, error) {
	n, err := r.unread.Run(ctx, r.client, nil, userID, r.nowMS()).Int()
	if err != nil {
		return 0, redisconn.Wrap("inbox: unread of "+userID, err)
	}
	return n, nil
}

// Since implements Store.
func (r *Redis) Since(ctx context.Context, userID string, after uint64) ([]broker.Notification, error) {
	reply, err := r.since.Run(ctx, r.client, nil, userID, r.nowMS(), strconv.FormatUint(after, 10)).Slice()
	if err != nil {
		return nil, redisconn.Wrap(fmt.Sprintf("inbox: since %d for %s", after, userID), err)
	}
	if len(reply) < 2 {
		return nil, fmt.Errorf("inbox: since %d for %s: unexpected reply of %d values", after, userID, len(reply))
	}
	if expired, _ := reply[0].(int64); expired == 1 {
		return nil, fmt.Errorf("inbox: since %d for %s (trimmed through %v): %w", after, userID, reply[1], ErrTrimmed)
	}
	if len(reply) == 2 {
		return nil, nil
	}
	out := make([]broker.Notification, 0, len(reply)-2)
	for _, v := range reply[2:] {
		s, ok := v.(string)
		if !ok {
			continue
		}
		e, err := decodeEntry(s)
		if err != nil {
			return nil, fmt.Errorf("inbox: since %d for %s: %w", after, userID, err)
		}
		out = append(out, e.Notification)
	}
	return out, nil
}

// keys are the names of userID's keys, as the scripts build them; only tests
// and operators need them from Go.
func (r *Redis) keys(userID string) (seq, items, unread, meta string) {
	base := "{" + userID + "}"
	return r.prefix.Key("inbox", base, "seq"), r.prefix.Key("inbox", base, "items"),
		r.prefix.Key("inbox", base, "unread"), r.prefix.Key("inbox", base, "meta")
}

func (r *Redis) nowMS() int64 { return r.now().UnixMilli() }

// storedEntry is the JSON of an item: the notification's own fields with
// seq and read_at beside them (Notification leaves Seq out of its JSON, so
// the outer field takes the name without a clash; ts is for Lua alone).
type storedEntry struct {
	Seq    uint64     `json:"seq"`
	ReadAt *time.Time `json:"read_at"`
	broker.Notification
}

func decodeEntry(s string) (Entry, error) {
	var se storedEntry
	if err := json.Unmarshal([]byte(s), &se); err != nil {
		return Entry{}, fmt.Errorf("decode stored entry: %w", err)
	}
	se.Notification.Seq = se.Seq
	return Entry{Notification: se.Notification, Read: se.ReadAt != nil, ReadAt: se.ReadAt}, nil
}

// formatReadAt is how a read time is stored: it goes into the entry's JSON
// as a string, so it must hold no quote or backslash, and RFC 3339 keeps
// every nanosecond the caller gave.
func formatReadAt(at time.Time) string { return at.UTC().Format(time.RFC3339Nano) }

// appendChunk bakes prefix and limits into the shared Lua code as literals.
func appendChunk(prefix redisconn.Prefix, limits Limits) string {
	maxAgeMS := int64(0)
	if limits.MaxAge > 0 {
		maxAgeMS = int64((limits.MaxAge + time.Millisecond - 1) / time.Millisecond)
	}
	return fmt.Sprintf("-- inbox: append code shared with the bus's publish script (inbox/redis.go).\n"+
		"local inbox_prefix = %s\nlocal inbox_max_per_user = %d\nlocal inbox_max_age_ms = %d\n",
		luaString(string(prefix)), limits.MaxPerUser, maxAgeMS) + chunkLua
}

// luaString quotes s as a Lua string literal. Every byte that is not plainly
// safe becomes a three-digit decimal escape, so no prefix (quotes,
// backslashes, newlines, "]]") can end the literal early or change the code
// around it.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_-:.{}/@", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "\\%03d", c)
	}
	b.WriteByte('"')
	return b.String()
}

// chunkLua follows the three literals appendChunk writes. Numbers go through
// inbox_num before reaching Redis, because redis.call prints a Lua number
// with 14 significant digits, which would round a long Seq.
const chunkLua = `
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
`

// operationsLua is what the store's own scripts share beyond the chunk.
const operationsLua = `
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
`

// appendLua: ARGV = now_ms, then user, id, seq, JSON for each notification.
const appendLua = `
local now_ms = tonumber(ARGV[1])
for i = 2, #ARGV, 4 do
  inbox_append(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], now_ms)
end
return 0
`

// listLua: ARGV = user, now_ms, before (0: newest), limit, unread only
// ("1"). Replies total, unread, more (1 if another match follows the page),
// then the page's items. One entry past the page is looked up so Next is
// set only when another matching entry exists.
const listLua = `
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
`

// sinceLua: ARGV = user, now_ms, after. Replies 1 and the trimmed mark when
// retention dropped something after the cursor; otherwise 0, the mark and
// the items after it, oldest first.
const sinceLua = `
local k, st = inbox_open(ARGV[1], ARGV[2])
if tonumber(ARGV[3]) < st.trimmed then return {1, inbox_num(st.trimmed)} end
local ids = redis.call('ZRANGEBYSCORE', k.seq, '(' .. ARGV[3], '+inf')
return inbox_items(k, ids, {0, inbox_num(st.trimmed)})
`

// unreadLua: ARGV = user, now_ms.
const unreadLua = `
local k = inbox_open(ARGV[1], ARGV[2])
return redis.call('ZCARD', k.unread)
`

// markReadLua: ARGV = user, now_ms, id, read time. Replies 0 (not found),
// or 1 (newly read) or 2 (already read) and the item as it now is.
const markReadLua = `
local k = inbox_open(ARGV[1], ARGV[2])
local item = redis.call('HGET', k.items, ARGV[3])
if not item then return {0} end
if redis.call('ZREM', k.unread, ARGV[3]) == 0 then return {2, item} end
item = inbox_mark_read(item, ARGV[4])
redis.call('HSET', k.items, ARGV[3], item)
return {1, item}
`

// markAllReadLua: ARGV = user, now_ms, read time. Replies how many changed.
const markAllReadLua = `
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
`

// deleteLua: ARGV = user, now_ms, id. Replies 1 if it was there. A user's
// deletion does not move the trimmed mark: a deleted entry is one the user
// no longer wants replayed.
const deleteLua = `
local k = inbox_open(ARGV[1], ARGV[2])
if redis.call('HDEL', k.items, ARGV[3]) == 0 then return 0 end
redis.call('ZREM', k.seq, ARGV[3])
redis.call('ZREM', k.unread, ARGV[3])
return 1
`
