package schedule

import (
	"errors"
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
	"notification-service/store"
)

func TestWithExpiryEvents(t *testing.T) {
	for flags, want := range map[string]string{
		"":    "Ex",
		"Kg":  "KgEx",
		"AKE": "AKE",
		"Ex":  "Ex",
		"xE":  "xE",
		"K$x": "K$xE",
		"gE":  "gEx",
		"KA":  "KAE",
	} {
		if got := withExpiryEvents(flags); got != want {
			t.Errorf("withExpiryEvents(%q) = %q, want %q", flags, got, want)
		}
	}
}

func TestRedisPrepare(t *testing.T) {
	flagsOf := func(t *testing.T, srv *redistest.Server) string {
		t.Helper()
		got, err := srv.Client().ConfigGet(t.Context(), "notify-keyspace-events").Result()
		if err != nil {
			t.Fatal(err)
		}
		return got["notify-keyspace-events"]
	}
	prepare := func(t *testing.T, srv *redistest.Server) error {
		return NewRedis(openClient(t, srv), RedisOptions{Prefix: "prep:", Logger: testLogger(t)}).Prepare(t.Context())
	}

	t.Run("adds to the flags set", func(t *testing.T) {
		is := is.New(t)
		srv := redistest.Start(t, redistest.Options{Args: []string{"--notify-keyspace-events", "Kg"}, ValidOn: redisconn.MinVersion})
		is.NoErr(prepare(t, srv))
		got := flagsOf(t, srv) // Redis reorders them
		for _, flag := range "KgEx" {
			is.True(strings.ContainsRune(got, flag))
		}
	})
	t.Run("keeps flags that suffice", func(t *testing.T) {
		is := is.New(t)
		srv := redistest.Start(t, redistest.Options{Args: []string{"--notify-keyspace-events", "AKE"}, ValidOn: redisconn.MinVersion})
		is.NoErr(prepare(t, srv))
		is.Equal(flagsOf(t, srv), "AKE")
	})
	t.Run("CONFIG refused and events off", func(t *testing.T) {
		is := is.New(t)
		srv := redistest.Start(t, redistest.Options{Args: []string{"--rename-command", "CONFIG", ""}, ValidOn: redisconn.MinVersion})
		err := prepare(t, srv)
		is.True(errors.Is(err, ErrExpiryEventsOff))
		is.True(!errors.Is(err, store.ErrUnavailable))
		// It says what to set, and how.
		is.True(strings.Contains(err.Error(), `notify-keyspace-events must include "Ex"`))
		is.True(strings.Contains(err.Error(), "CONFIG SET notify-keyspace-events Ex"))
		is.True(strings.Contains(err.Error(), "redis.conf"))
		t.Log(err)
	})
	t.Run("CONFIG refused but events on", func(t *testing.T) {
		is := is.New(t)
		srv := redistest.Start(t, redistest.Options{Args: []string{"--rename-command", "CONFIG", "", "--notify-keyspace-events", "Ex"}, ValidOn: redisconn.MinVersion})
		is.NoErr(prepare(t, srv)) // the probe key's event arrived
	})
	t.Run("Redis down", func(t *testing.T) {
		is := is.New(t)
		srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
		srv.Stop()
		is.True(errors.Is(prepare(t, srv), store.ErrUnavailable))
	})
}
