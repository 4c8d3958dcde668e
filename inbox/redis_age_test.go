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

// Age retention (Limits.MaxAge) in the Redis store: the shared suite
// (contract_age_test.go) on a fake clock, timestamps in any zone, and what
// a cursor reads once Redis itself has expired an inbox's keys.

// newRedisWithClock is a store on its own prefix whose notion of now is a
// fake clock. Key TTLs are relative, so they follow the fake clock too.
func newRedisWithClock(client *redis.Client, limits Limits) (*Redis, *clock) {
	c := newClock()
	r := NewRedis(client, hostilePrefix(), limits)
	r.now = c.now
	return r, c
}

func TestRedisAgeRetention(t *testing.T) {
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	testAgeRetention(t, func(t *testing.T, limits Limits) (Store, *clock) {
		return newRedisWithClock(client, limits)
	}, time.Millisecond)
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
