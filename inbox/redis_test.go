package inbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
	"notification-service/store"
)

// prefixes numbers the prefixes of the stores tests make, so stores sharing
// one server never see each other's keys.
var prefixes atomic.Int64

// hostilePrefix is a fresh prefix full of what could break the Lua literal
// it is baked into: quotes, backslashes, a newline, "]]", '%'.
func hostilePrefix() redisconn.Prefix {
	return redisconn.Prefix(fmt.Sprintf("t%d \"'\\]]=]\n%%s:", prefixes.Add(1)))
}

func TestRedis(t *testing.T) {
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	testStore(t, func(t *testing.T, limits Limits) Store {
		return NewRedis(client, hostilePrefix(), limits)
	})
}

// TestRedisAppendLuaInAnotherScript runs the chunk the way the Redis bus
// does: in front of a script of its own that takes each Seq from a counter,
// with now from Redis's TIME. What it stores must read back through the
// store like any Append.
func TestRedisAppendLuaInAnotherScript(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	s := NewRedis(client, hostilePrefix(), Limits{MaxPerUser: 3, MaxAge: time.Hour})

	chunk := s.AppendLua()
	is.True(!strings.Contains(chunk, "KEYS")) // the bus owns its script's keys and arguments
	is.True(!strings.Contains(chunk, "ARGV"))
	for _, m := range regexp.MustCompile(`(?m)^local (?:function )?([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(chunk, -1) {
		is.True(strings.HasPrefix(m[1], "inbox_")) // only inbox_ locals at the top level
	}
	is.True(regexp.MustCompile(`(?m)^local function inbox_append\(user_id, id, seq, notification_json, now_ms\)$`).MatchString(chunk))

	// ARGV holds (user, id, JSON) triples. The counter starts past 2^50:
	// Seq values longer than Lua's 14 printed digits must not be rounded.
	publish := redis.NewScript(chunk + `
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seqs = {}
for i = 1, #ARGV, 3 do
  local seq = redis.call('INCR', KEYS[1])
  inbox_append(ARGV[i], ARGV[i + 1], seq, ARGV[i + 2], now_ms)
  seqs[#seqs + 1] = seq
end
return seqs
`)
	const start = 1 << 50
	counter := "bus:seq"
	is.NoErr(client.Set(t.Context(), counter, start, 0).Err())

	var args []any
	var sent []broker.Notification
	for i, user := range []string{"alice", "", "alice", "bob", "alice", "alice", "alice"} {
		n := broker.Notification{
			ID:        fmt.Sprintf("id-%d", i),
			Type:      "info",
			Title:     fmt.Sprintf("Notification %d", i),
			UserID:    user,
			Timestamp: broker.Now(),
			// A "timestamp" inside data, long past, is not the
			// notification's: MaxAge must not drop it.
			Data: json.RawMessage(`{"timestamp":"1999-01-01T00:00:00Z","list":[],"big":12345678901234567890}`),
		}
		if user == "" {
			n.Channels = []string{"news"}
		}
		body, err := json.Marshal(n)
		is.NoErr(err)
		args = append(args, n.UserID, n.ID, body)
		sent = append(sent, n)
	}
	seqs, err := publish.Run(t.Context(), client, []string{counter}, args...).Int64Slice()
	is.NoErr(err)
	is.Equal(len(seqs), len(sent))
	for i := range sent {
		sent[i].Seq = uint64(seqs[i])
		is.Equal(sent[i].Seq, uint64(start+i+1))
	}

	// MaxPerUser 3 kept Alice's last three; the broadcast went nowhere.
	page, err := s.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{sent[6].Seq, sent[5].Seq, sent[4].Seq})
	is.Equal(page.Unread, 3)
	for i, e := range page.Entries {
		want := sent[6-i]
		is.Equal(e.ID, want.ID)
		is.Equal(e.Title, want.Title)
		is.True(e.Timestamp.Equal(want.Timestamp))
		is.Equal(string(e.Data), string(want.Data)) // data comes back byte for byte
		is.True(!e.Read)
	}
	_, err = s.Since(t.Context(), "alice", sent[2].Seq-1)
	is.True(errors.Is(err, ErrTrimmed)) // the chunk trimmed and marked it
	missed, err := s.Since(t.Context(), "alice", sent[2].Seq)
	is.NoErr(err)
	is.Equal(notificationSeqs(missed), []uint64{sent[4].Seq, sent[5].Seq, sent[6].Seq})
	missed, err = s.Since(t.Context(), "bob", 0)
	is.NoErr(err)
	is.Equal(len(missed), 1)
	is.Equal(missed[0], sent[3])
	page, err = s.List(t.Context(), "", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(page.Total, 0)

	// A call that breaks the contract raises an error naming inbox_append
	// before writing anything.
	bad := redis.NewScript(chunk + `inbox_append('carol', 'x', 'not a number', '{}', 0)`)
	err = bad.Run(t.Context(), client, nil).Err()
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "inbox_append"))
	is.True(!redisconn.Unavailable(err))
	page, err = s.List(t.Context(), "carol", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(page.Total, 0)
}

func TestRedisKeyLayout(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	s := NewRedis(client, "app:", Limits{MaxAge: time.Hour})
	appendAll(t, s, note("alice", 1), note("alice", 2))
	_, _, err := s.MarkRead(t.Context(), "alice", idOf(1), at(0))
	is.NoErr(err)

	seq, items, unread, meta := s.keys("alice")
	is.Equal(seq, "app:inbox:{alice}:seq")
	ctx := t.Context()
	is.Equal(client.Type(ctx, seq).Val(), "zset")
	is.Equal(client.Type(ctx, items).Val(), "hash")
	is.Equal(client.Type(ctx, unread).Val(), "zset")
	is.Equal(client.Type(ctx, meta).Val(), "hash")
	is.Equal(client.ZRangeWithScores(ctx, seq, 0, -1).Val(), []redis.Z{{Score: 1, Member: idOf(1)}, {Score: 2, Member: idOf(2)}})
	is.Equal(client.ZRange(ctx, unread, 0, -1).Val(), []string{idOf(2)})
	item := client.HGet(ctx, items, idOf(1)).Val()
	is.True(regexp.MustCompile(`^\{"seq":1,"ts":\d+,"read_at":"2026-01-01T00:00:00Z","id":"n1",`).MatchString(item))

	// Entries vanish with their keys once the newest has aged out; the
	// retention mark must outlive them.
	for _, key := range []string{seq, items, unread} {
		ttl := client.PTTL(ctx, key).Val()
		is.True(ttl > time.Hour-time.Minute && ttl <= time.Hour+time.Millisecond)
	}
	is.Equal(client.PTTL(ctx, meta).Val(), time.Duration(-1)) // no expiry
	is.Equal(client.HGet(ctx, meta, "newest").Val(), "2")

	// Without MaxAge nothing expires and nothing but the entries is kept.
	plain := NewRedis(client, "plain:", Limits{MaxPerUser: 10})
	appendAll(t, plain, note("alice", 1))
	seq, _, _, meta = plain.keys("alice")
	is.Equal(client.PTTL(ctx, seq).Val(), time.Duration(-1))
	is.Equal(client.Exists(ctx, meta).Val(), int64(0))
}

func TestRedisUserIDsCannotReachEachOthersKeys(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	s := NewRedis(client, "app:", Limits{MaxPerUser: 5})
	users := []string{"a", "a:b", "a}:seq", "a}:items", "{a}", "a}:unread}:x", "}", "{", "a:seq", "ü:{}"}
	for i, u := range users {
		appendAll(t, s, note(u, uint64(i+1)))
	}
	for i, u := range users {
		page, err := s.List(t.Context(), u, Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{uint64(i + 1)})
		is.Equal(page.Entries[0].UserID, u)
	}
	keys, err := client.Keys(t.Context(), "app:*").Result()
	is.NoErr(err)
	is.Equal(len(keys), 3*len(users)) // seq, items and unread each, no sharing
}

func TestRedisRepeatedID(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	r := NewRedis(client, hostilePrefix(), Limits{})
	first := note("alice", 1)
	again := note("alice", 2)
	again.ID = first.ID
	appendAll(t, r, first, note("alice", 3))
	_, _, err := r.MarkRead(t.Context(), "alice", first.ID, at(0))
	is.NoErr(err)
	appendAll(t, r, again)

	// The later notification replaces the earlier one, unread.
	page, err := r.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{3, 2})
	is.Equal(page.Unread, 2)
	e, changed, err := r.MarkRead(t.Context(), "alice", first.ID, at(1))
	is.NoErr(err)
	is.True(changed)
	is.Equal(e.Seq, uint64(2))
	is.NoErr(r.Delete(t.Context(), "alice", first.ID))
	err = r.Delete(t.Context(), "alice", first.ID)
	is.True(errors.Is(err, ErrNotFound))
	unread, err := r.Unread(t.Context(), "alice")
	is.NoErr(err)
	is.Equal(unread, 1)
}

func TestRedisAppendOutOfOrderKeepsSeqOrder(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	r := NewRedis(client, hostilePrefix(), Limits{})
	appendAll(t, r, note("alice", 5), note("alice", 9))
	appendAll(t, r, note("alice", 3), note("alice", 7))

	page, err := r.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{9, 7, 5, 3})
	missed, err := r.Since(t.Context(), "alice", 4)
	is.NoErr(err)
	is.Equal(notificationSeqs(missed), []uint64{5, 7, 9})
}

func TestRedisListRejectsNonPositiveLimit(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	r := NewRedis(client, hostilePrefix(), Limits{})
	appendAll(t, r, note("alice", 1))
	_, err := r.List(t.Context(), "alice", Query{})
	is.True(err != nil)
}

// TestRedisUnavailable checks that every method says Redis is unreachable
// in a way the transport turns into 503, and works again once it is back.
func TestRedisUnavailable(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	opts, err := redisconn.ParseURL(srv.Addr())
	is.NoErr(err)
	opts.DialerRetries = 1 // the same outage, only seen sooner
	client := redisconn.Open(opts)
	t.Cleanup(func() { client.Close() })
	s := NewRedis(client, "down:", Limits{MaxPerUser: 10, MaxAge: time.Hour})
	ctx := t.Context()
	appendAll(t, s, note("alice", 1))

	srv.Stop()
	// In order: delete last, so after the restart every call finds what
	// it works on.
	calls := []struct {
		name string
		call func() error
	}{
		{"append", func() error { return s.Append(ctx, note("alice", 2)) }},
		{"list", func() error {
			_, err := s.List(ctx, "alice", Query{Limit: 10})
			return err
		}},
		{"unread", func() error {
			_, err := s.Unread(ctx, "alice")
			return err
		}},
		{"since", func() error {
			_, err := s.Since(ctx, "alice", 0)
			return err
		}},
		{"mark read", func() error {
			_, _, err := s.MarkRead(ctx, "alice", idOf(1), at(0))
			return err
		}},
		{"mark all read", func() error {
			_, err := s.MarkAllRead(ctx, "alice", at(0))
			return err
		}},
		{"delete", func() error { return s.Delete(ctx, "alice", idOf(1)) }},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", c.name, err)
		}
	}

	srv.Restart() // empty: the test server keeps nothing
	appendAll(t, s, note("alice", 1))
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Errorf("%s after restart: %v", c.name, err)
		}
	}
	_, _, err = s.MarkRead(ctx, "alice", idOf(1), at(0))
	is.True(errors.Is(err, ErrNotFound)) // an answer, not an outage
	is.True(!errors.Is(err, store.ErrUnavailable))
}
