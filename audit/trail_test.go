package audit

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestTrailSamplesAndCounts: every event is counted, at most PerSecond of
// an action a second are kept, and the counts reach back a minute.
func TestTrailSamplesAndCounts(t *testing.T) {
	is := is.New(t)
	store := NewMemoryTrail(100)
	trail := NewTrail(store, TrailOptions{Instance: "me", PerSecond: 3})
	clock := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	trail.now = func() time.Time { return clock }
	log := New(nil, trail)

	for i := range 10 {
		log.Record("send", slog.Any("user_ids", []string{"ann", "bob"}), slog.String("type", "tarea"),
			slog.Any("channels", []string{"orders"}), slog.Int("n", i), slog.Duration("lateness", time.Millisecond))
	}
	log.Record("delivery", slog.String("user_id", "ann"), slog.Int("connections", 2))
	clock = clock.Add(time.Second)
	for range 5 {
		log.Record("send", slog.String("user_id", "carl"))
	}
	trail.flush(context.Background())

	got, err := store.Latest(context.Background(), "", Filter{}, 100)
	is.NoErr(err)
	is.Equal(len(got), 3+1+3) // three sends each second, the one delivery
	oldest := got[len(got)-1]
	is.Equal(oldest.Action, "send")
	is.Equal(oldest.Instance, "me")
	is.Equal(oldest.UserIDs, []string{"ann", "bob"})
	is.Equal(oldest.Type, "tarea")
	is.Equal(oldest.Channels, []string{"orders"})
	is.Equal(oldest.Fields, map[string]any{"n": int64(0), "lateness": "1ms"})

	clock = clock.Add(time.Second)
	is.Equal(trail.Counts(clock), map[string]Count{
		"send":     {LastSecond: 5, LastMinute: 15},
		"delivery": {LastSecond: 0, LastMinute: 1},
	})
	clock = clock.Add(59 * time.Second) // the first second has left the minute
	is.Equal(trail.Counts(clock), map[string]Count{"send": {LastSecond: 0, LastMinute: 5}})
	clock = clock.Add(time.Minute)
	is.Equal(trail.Counts(clock), map[string]Count{})
}

func TestTrailRunFlushesOnStop(t *testing.T) {
	is := is.New(t)
	store := NewMemoryTrail(10)
	trail := NewTrail(store, TrailOptions{FlushEvery: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- trail.Run(ctx) }()
	trail.Offer("cancel", []slog.Attr{slog.String("schedule_id", "s1")})
	cancel()
	is.NoErr(<-done)
	got, _ := store.Latest(context.Background(), "", Filter{}, 10)
	is.Equal(len(got), 1)
}
