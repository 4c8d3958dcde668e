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
// cluster. The scripts are in lua/ (lua.go embeds them).

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
	return fmt.Sprintf("-- inbox: append code shared with the bus's publish script (inbox/lua/chunk.lua).\n"+
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
