package idempotency

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
	"notification-service/store"
)

// prefixes numbers the prefixes of the stores tests make, so stores sharing
// one server never see each other's keys.
var prefixes atomic.Int64

func freshPrefix() redisconn.Prefix {
	return redisconn.Prefix(fmt.Sprintf("test%d:", prefixes.Add(1)))
}

func TestRedis(t *testing.T) {
	client := redistest.Start(t, redistest.Options{}).Client()
	testStore(t, func(t *testing.T, limits Limits) Store { return NewRedis(client, freshPrefix(), limits) })
}

func TestRedisKeyLayout(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{}).Client()
	ctx := t.Context()
	s := NewRedis(client, "app:", Limits{TTL: time.Hour})
	tok := claim(t, s, "a:b}{", "fp")
	is.Equal(client.HGetAll(ctx, "app:idem:{a:b}{}").Val(), map[string]string{"fp": "fp", "done": "0", "tok": tok})

	// Keys that look alike, and the same key under another prefix, are
	// separate records.
	tok = claim(t, s, "a", "fp")
	claim(t, s, "a:b", "fp")
	claim(t, NewRedis(client, "other:", Limits{TTL: time.Hour}), "a", "fp")
	is.NoErr(s.Finish(ctx, "a", tok, []byte("A")))
	_, err := s.Begin(ctx, "a:b", "fp")
	is.True(errors.Is(err, ErrInProgress))
}

// TestRedisLeavesTimeToRedis checks the expiry each write sets: a claim
// lasts the lease, a result the TTL from Finish, a claim never outlives the
// TTL.
func TestRedisLeavesTimeToRedis(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{}).Client()
	ctx := t.Context()
	within := func(got, want time.Duration) bool { return got > want-2*time.Second && got <= want }

	s := NewRedis(client, "app:", Limits{TTL: time.Hour})
	tok := claim(t, s, "k", "fp")
	is.True(within(client.PTTL(ctx, s.key("k")).Val(), DefaultClaimLease))
	is.NoErr(s.Finish(ctx, "k", tok, []byte("result")))
	is.True(within(client.PTTL(ctx, s.key("k")).Val(), time.Hour))
	is.Equal(client.HExists(ctx, s.key("k"), "tok").Val(), false) // a result has no claim

	short := NewRedis(client, "short:", Limits{TTL: time.Minute, ClaimLease: 30 * time.Second})
	claim(t, short, "k", "fp")
	is.True(within(client.PTTL(ctx, short.key("k")).Val(), 30*time.Second))

	is.Equal(NewRedis(client, "default:", Limits{}).limits, Limits{TTL: DefaultTTL, ClaimLease: DefaultClaimLease})
}

// expired waits until Redis expires key, by its keyspace event rather than
// by guessing a delay.
func expired(t *testing.T, events *redis.PubSub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		msg, err := events.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("waiting for the key to expire: %v", err)
		}
		if msg.Payload == "expired" {
			return
		}
	}
}

func watch(t *testing.T, client *redis.Client, key string) *redis.PubSub {
	t.Helper()
	if err := client.ConfigSet(t.Context(), "notify-keyspace-events", "Kgx").Err(); err != nil {
		t.Fatal(err)
	}
	events := client.Subscribe(t.Context(), "__keyspace@0__:"+key)
	t.Cleanup(func() { events.Close() })
	if _, err := events.Receive(t.Context()); err != nil { // subscribed
		t.Fatal(err)
	}
	return events
}

func TestRedisStuckClaimExpires(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{}).Client()
	s := NewRedis(client, "app:", Limits{TTL: time.Hour, ClaimLease: 100 * time.Millisecond})
	events := watch(t, client, s.key("k"))

	// Never finished nor aborted: its request died.
	tok := claim(t, s, "k", "fp")
	expired(t, events)

	is.True(s.Finish(t.Context(), "k", tok, []byte("late")) != nil) // its claim is gone
	claim(t, s, "k", "other")                                       // nothing recorded, so no mismatch
}

func TestRedisFinishedKeyExpiresAfterTTL(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{}).Client()
	s := NewRedis(client, "app:", Limits{TTL: time.Second}) // outlives claim and Finish on a loaded machine
	events := watch(t, client, s.key("k"))

	tok := claim(t, s, "k", "fp")
	is.NoErr(s.Finish(t.Context(), "k", tok, []byte("result")))
	expired(t, events)

	claim(t, s, "k", "other") // forgotten, so no mismatch
}

func TestRedisEmptyResult(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{}).Client()
	s := NewRedis(client, "app:", Limits{TTL: time.Hour})
	tok := claim(t, s, "k", "fp")
	is.NoErr(s.Finish(t.Context(), "k", tok, nil))
	got, err := s.Begin(t.Context(), "k", "fp")
	is.NoErr(err)
	is.True(got.Done)
	is.Equal(len(got.Result), 0)
}

// TestRedisUnavailable checks that every method says Redis is unreachable
// in a way the transport turns into 503, and works again once it is back.
func TestRedisUnavailable(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	opts, err := redisconn.ParseURL(srv.Addr())
	is.NoErr(err)
	opts.DialerRetries = 1 // the same outage, only seen sooner
	client := redisconn.Open(opts)
	t.Cleanup(func() { client.Close() })
	s := NewRedis(client, "down:", Limits{TTL: time.Hour})
	ctx := t.Context()
	tok := claim(t, s, "k", "fp")

	srv.Stop()
	_, err = s.Begin(ctx, "k", "fp")
	is.True(errors.Is(err, store.ErrUnavailable))
	err = s.Finish(ctx, "k", tok, []byte("r"))
	is.True(errors.Is(err, store.ErrUnavailable))
	err = s.Abort(ctx, "k", tok)
	is.True(errors.Is(err, store.ErrUnavailable))

	srv.Restart() // empty: the test server keeps nothing
	tok = claim(t, s, "k", "fp")
	is.NoErr(s.Finish(ctx, "k", tok, []byte("r")))
	is.NoErr(s.Abort(ctx, "k", tok))
	got, err := s.Begin(ctx, "k", "fp")
	is.NoErr(err)
	is.True(got.Done)
	is.Equal(string(got.Result), "r")
}
