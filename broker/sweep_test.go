package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"
)

// nopLog is a UserLog with no users.
type nopLog struct{}

func (nopLog) Append(context.Context, ...Notification) error { return nil }
func (nopLog) Since(context.Context, string, uint64) ([]Notification, error) {
	return nil, nil
}

// TestSweepDropsHistoriesEmptiedByAge: a channel nobody broadcasts on any
// more does not keep its history in memory forever, and a cursor from
// before the dropped history still gets a reset, never a silent gap.
func TestSweepDropsHistoriesEmptiedByAge(t *testing.T) {
	is := is.New(t)
	hub := NewHub(0)
	b := NewMemory(hub, nopLog{}, HistoryLimits{MaxPerChannel: 10, MaxAge: time.Hour}, nil)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.now = func() time.Time { return clock }
	ctx := t.Context()

	start, err := b.Head(ctx)
	is.NoErr(err)
	_, err = b.Publish(ctx, Notification{ID: "1", Channels: []string{"old"}})
	is.NoErr(err)
	is.Equal(len(b.history), 1)

	clock = clock.Add(time.Hour + sweepEvery)
	_, err = b.Publish(ctx, Notification{ID: "2", Channels: []string{"fresh"}})
	is.NoErr(err)
	_, kept := b.history["old"]
	is.True(!kept) // emptied by age and dropped
	is.Equal(len(b.history), 1)

	is.NoErr(hub.Register("c", "u", []string{"old"}, &countingConn{}))
	_, err = b.Replay(ctx, "c", start)
	is.True(errors.Is(err, ErrCursorExpired))
	head, err := b.Head(ctx)
	is.NoErr(err)
	frames, err := b.Replay(ctx, "c", head)
	is.NoErr(err)
	is.Equal(len(frames), 0)
}
