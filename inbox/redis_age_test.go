package inbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
)

// Age retention (Limits.MaxAge) in the Redis store: applied by every read
// on a fake clock, on timestamps in any zone and with MaxPerUser, and what
// a cursor reads once Redis itself has expired an inbox's keys.

// newRedisWithClock is a store on its own prefix whose notion of now is a
// fake clock. Key TTLs are relative, so they follow the fake clock too.
func newRedisWithClock(client *redis.Client, limits Limits) (*Redis, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	r := NewRedis(client, hostilePrefix(), limits)
	r.now = c.now
	return r, c
}

func TestRedisMaxAgeTrimsBeforeReading(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	r, c := newRedisWithClock(client, Limits{MaxAge: 10 * time.Minute})
	t0 := c.now()
	appendAll(t, r, noteAt("alice", 1, t0))
	c.advance(time.Minute)
	appendAll(t, r, noteAt("alice", 2, c.now()))
	c.advance(time.Minute)
	appendAll(t, r, noteAt("alice", 3, c.now()))

	// Nobody appends from here on: every read applies age itself.
	c.advance(8*time.Minute + 30*time.Second) // seq 1 is 10m30s old
	unread, err := r.Unread(t.Context(), "alice")
	is.NoErr(err)
	is.Equal(unread, 2)
	page, err := r.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{3, 2})
	is.Equal(page.Total, 2)
	_, err = r.Since(t.Context(), "alice", 0)
	is.True(errors.Is(err, ErrTrimmed))
	missed, err := r.Since(t.Context(), "alice", 1)
	is.NoErr(err)
	is.Equal(notificationSeqs(missed), []uint64{2, 3})

	c.advance(time.Hour) // everything is old
	missed, err = r.Since(t.Context(), "alice", 3)
	is.NoErr(err)
	is.Equal(len(missed), 0)
	_, err = r.Since(t.Context(), "alice", 2)
	is.True(errors.Is(err, ErrTrimmed))
	_, _, err = r.MarkRead(t.Context(), "alice", idOf(3), c.now())
	is.True(errors.Is(err, ErrNotFound))
	changed, err := r.MarkAllRead(t.Context(), "alice", c.now())
	is.NoErr(err)
	is.Equal(changed, 0)
	page, err = r.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(page.Total, 0)
	is.Equal(page.Unread, 0)
}

func TestRedisMaxAgeBoundary(t *testing.T) {
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	tests := []struct {
		name string
		age  time.Duration
		kept bool
	}{
		// The Redis store counts in milliseconds, as broker.Now stamps.
		{name: "younger", age: time.Hour - time.Millisecond, kept: true},
		{name: "exactly max age", age: time.Hour, kept: true},
		{name: "older", age: time.Hour + time.Millisecond, kept: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			r, c := newRedisWithClock(client, Limits{MaxAge: time.Hour})
			appendAll(t, r, noteAt("alice", 1, c.now()))
			c.advance(tt.age)
			page, err := r.List(t.Context(), "alice", Query{Limit: 10})
			is.NoErr(err)
			is.Equal(page.Total == 1, tt.kept)
			_, err = r.Since(t.Context(), "alice", 0)
			is.Equal(err == nil, tt.kept)
		})
	}
}

func TestRedisTimestampsInAnyZone(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	r, c := newRedisWithClock(client, Limits{MaxAge: time.Hour})
	east := time.FixedZone("east", 5*3600+30*60)
	west := time.FixedZone("west", -8*3600)
	// Same instants as the clock's, written with offsets and sub-ms digits.
	appendAll(t, r,
		noteAt("alice", 1, c.now().Add(-61*time.Minute).In(east)),
		noteAt("alice", 2, c.now().Add(-59*time.Minute+123456*time.Nanosecond).In(west)),
		noteAt("alice", 3, c.now().In(east)))
	page, err := r.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{3, 2})
	c.advance(time.Minute + time.Millisecond) // seq 2 is now past the hour
	page, err = r.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{3})
}

func TestRedisAppendOfOldNotificationIsTrimmedAtOnce(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	r, c := newRedisWithClock(client, Limits{MaxAge: time.Hour})
	appendAll(t, r, noteAt("alice", 1, c.now().Add(-2*time.Hour)))

	page, err := r.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(page.Total, 0)
	is.Equal(page.Unread, 0)
	_, err = r.Since(t.Context(), "alice", 0)
	is.True(errors.Is(err, ErrTrimmed)) // lost, so a replay from before it cannot be complete
}

func TestRedisWhicheverLimitIsReachedFirst(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	r, c := newRedisWithClock(client, Limits{MaxPerUser: 3, MaxAge: 10 * time.Minute})
	for seq := range uint64(5) {
		appendAll(t, r, noteAt("alice", seq+1, c.now()))
		c.advance(3 * time.Minute)
	}
	page, err := r.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{5, 4, 3})

	c.advance(2 * time.Minute) // seq 3 is now 11 minutes old
	page, err = r.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{5, 4})
	_, err = r.Since(t.Context(), "alice", 2)
	is.True(errors.Is(err, ErrTrimmed))
	missed, err := r.Since(t.Context(), "alice", 3)
	is.NoErr(err)
	is.Equal(notificationSeqs(missed), []uint64{4, 5})
}

// TestRedisExpiredInboxStillSaysTrimmed lets Redis itself expire an inbox:
// the entries vanish with their keys, and a cursor from before them must
// still get ErrTrimmed rather than an empty, "complete" replay.
func TestRedisExpiredInboxStillSaysTrimmed(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	client := srv.Client()
	ctx := t.Context()
	is.NoErr(client.ConfigSet(ctx, "notify-keyspace-events", "Kgx").Err())
	s := NewRedis(client, "exp:", Limits{MaxAge: 200 * time.Millisecond})
	seqKey, _, _, meta := s.keys("alice")

	events := client.Subscribe(ctx, "__keyspace@0__:"+seqKey)
	defer events.Close()
	_, err := events.Receive(ctx) // the subscription is in place
	is.NoErr(err)

	appendAll(t, s, note("alice", 1), note("alice", 2), note("bob", 3), note("alice", 4))

	// Expired by its TTL, or dropped by age on the way if this machine
	// stalled past MaxAge: either way the index is gone.
	deadline, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for gone := false; !gone; {
		msg, err := events.ReceiveMessage(deadline)
		is.NoErr(err)
		gone = msg.Payload == "expired" || msg.Payload == "del"
	}

	_, err = s.Since(ctx, "alice", 0)
	is.True(errors.Is(err, ErrTrimmed))
	_, err = s.Since(ctx, "alice", 3)
	is.True(errors.Is(err, ErrTrimmed)) // seq 4 went with the keys
	missed, err := s.Since(ctx, "alice", 4)
	is.NoErr(err)
	is.Equal(len(missed), 0)
	page, err := s.List(ctx, "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(page.Total, 0)
	is.Equal(client.HGet(ctx, meta, "trimmed").Val(), "4")

	// The inbox goes on from there.
	appendAll(t, s, note("alice", 5))
	missed, err = s.Since(ctx, "alice", 4)
	is.NoErr(err)
	is.Equal(notificationSeqs(missed), []uint64{5})
	_, err = s.Since(ctx, "alice", 3)
	is.True(errors.Is(err, ErrTrimmed))
}

func TestRedisEmptiedInboxBeforeExpiryIsNotTrimmed(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	r := NewRedis(client, hostilePrefix(), Limits{MaxAge: time.Hour})
	appendAll(t, r, note("alice", 1))
	is.NoErr(r.Delete(t.Context(), "alice", idOf(1)))

	// The keys are gone because the user emptied the inbox, not because
	// they expired: nothing was lost to retention.
	missed, err := r.Since(t.Context(), "alice", 0)
	is.NoErr(err)
	is.Equal(len(missed), 0)
}
