package redisconn_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
	"notification-service/store"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw      string
		addr     string
		db       int
		user     string
		password string
		tls      bool
	}{
		// The three forms the seed uses.
		{raw: "localhost:6379", addr: "localhost:6379"},
		{raw: "redis:6379", addr: "redis:6379"},
		{raw: "redis://localhost:6379/0", addr: "localhost:6379"},
		{raw: "redis://:s3cret@cache.internal:6380/2", addr: "cache.internal:6380", db: 2, password: "s3cret"},
		{raw: "redis://app:s3cret@cache:6379/1", addr: "cache:6379", db: 1, user: "app", password: "s3cret"},
		{raw: "rediss://cache.example.com:6380/0", addr: "cache.example.com:6380", tls: true},
		{raw: "[::1]:6379", addr: "[::1]:6379"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			is := is.New(t)
			opts, err := redisconn.ParseURL(tt.raw)
			is.NoErr(err)
			is.Equal(opts.Addr, tt.addr)
			is.Equal(opts.DB, tt.db)
			is.Equal(opts.Username, tt.user)
			is.Equal(opts.Password, tt.password)
			is.Equal(opts.TLSConfig != nil, tt.tls)
		})
	}
}

func TestParseURLRefuses(t *testing.T) {
	for _, raw := range []string{"", "localhost", "localhost:notaport", ":6379", "localhost:0", "http://localhost:6379", "redis://", "redis://:hunter2@host:99999/0", "redis://host:6379/notadb"} {
		t.Run(raw, func(t *testing.T) {
			is := is.New(t)
			_, err := redisconn.ParseURL(raw)
			is.True(err != nil)
			is.True(!strings.Contains(err.Error(), "hunter2")) // a password never reaches a message
		})
	}
}

func TestPrefixKey(t *testing.T) {
	is := is.New(t)
	is.Equal(redisconn.Prefix("app:").Key("inbox", "u1"), "app:inbox:u1")
}

func TestUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	opts, err := redisconn.ParseURL(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	client := redisconn.Open(opts)
	defer client.Close()
	ctx := context.Background()

	t.Run("a reply error is not unavailability", func(t *testing.T) {
		is := is.New(t)
		err := client.Do(ctx, "NOSUCHCOMMAND").Err()
		is.True(err != nil)
		is.True(!redisconn.Unavailable(err))
		is.True(!redisconn.Unavailable(redis.Nil))
		is.True(!redisconn.Unavailable(context.Canceled))
	})
	t.Run("a stopped server is", func(t *testing.T) {
		is := is.New(t)
		is.NoErr(client.Ping(ctx).Err())
		srv.Stop()
		err := redisconn.Wrap("ping", client.Ping(ctx).Err())
		is.True(errors.Is(err, store.ErrUnavailable))
		is.True(strings.HasPrefix(err.Error(), "ping: "))
		srv.Restart()
		is.NoErr(client.Ping(ctx).Err()) // the client reconnects by itself
	})
}

func TestHooks(t *testing.T) {
	is := is.New(t)
	var errs, reconnects int
	h := redisconn.Hooks{OnError: func() { errs++ }, OnReconnect: func() { reconnects++ }}
	is.NoErr(h.Wrap("op", nil))
	is.True(errors.Is(h.Wrap("op", redis.Nil), redis.Nil)) // an answer
	h.Wrap("op", context.Canceled)                         // the caller's doing
	is.Equal(errs, 0)
	err := h.Wrap("op", errors.New("connection reset"))
	is.True(errors.Is(err, store.ErrUnavailable))
	is.Equal(errs, 1)
	h.Reconnected()
	is.Equal(reconnects, 1)

	var zero redisconn.Hooks // tells nobody, and does not panic
	zero.Reconnected()
	is.True(errors.Is(zero.Wrap("op", errors.New("connection reset")), store.ErrUnavailable))
}

func TestBackoff(t *testing.T) {
	is := is.New(t)
	b := redisconn.Backoff{Min: 50 * time.Millisecond, Max: 300 * time.Millisecond}
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	is.Equal(got, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond})
	b.Reset()
	is.Equal(b.Next(), 50*time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	is.True(!b.Wait(ctx)) // an ended context ends the wait
}

func TestRandomHex(t *testing.T) {
	is := is.New(t)
	a, b := redisconn.RandomHex(8), redisconn.RandomHex(8)
	is.Equal(len(a), 16)
	is.True(a != b)
}

func TestCheckVersion(t *testing.T) {
	info := func(v string) string {
		return "# Server\r\nredis_version:" + v + "\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n"
	}
	tests := []struct {
		info    string
		ok      bool
		unknown bool
		message string
	}{
		{info: info("6.0.0"), ok: true},
		{info: info("6.0.16"), ok: true},
		{info: info("6.2.14"), ok: true},
		{info: info("7.0.15"), ok: true},
		{info: info("10.0.0"), ok: true},
		{info: info("7"), ok: true},
		{info: info("5.0.7"), message: "Redis 5.0.7 is too old: the service needs Redis 6.0.0 or later"},
		{info: info("4.0.14"), message: "Redis 4.0.14 is too old: the service needs Redis 6.0.0 or later"},
		{info: info("5.99.99"), message: "Redis 5.99.99 is too old: the service needs Redis 6.0.0 or later"},
		{info: "# Server\r\nredis_mode:standalone\r\n", unknown: true},
		{info: info("six"), unknown: true},
		{info: info("6.0.0.1"), unknown: true},
		{info: "", unknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.info, func(t *testing.T) {
			is := is.New(t)
			err := redisconn.CheckVersion(tt.info)
			is.Equal(err == nil, tt.ok)
			is.Equal(errors.Is(err, redisconn.ErrVersionUnknown), tt.unknown)
			if tt.message != "" {
				is.Equal(err.Error(), tt.message)
			}
		})
	}
}

func TestRequireVersion(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	opts, err := redisconn.ParseURL(srv.Addr())
	is.NoErr(err)
	client := redisconn.Open(opts)
	defer client.Close()
	is.NoErr(redisconn.RequireVersion(t.Context(), client)) // the installed 7.0
	srv.Stop()
	is.True(errors.Is(redisconn.RequireVersion(t.Context(), client), store.ErrUnavailable))
}

func TestReadStatus(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	s := redisconn.ReadStatus(context.Background(), srv.Client())
	is.True(s.Up)
	is.True(s.Version != "")
	is.True(s.UsedMemory > 0)
	is.True(s.Clients >= 1)
	is.True(s.PingMillis > 0)
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	s = redisconn.ReadStatus(ctx, srv.Client())
	is.True(!s.Up)
	is.True(strings.Contains(s.Error, "store unavailable"))
}
