package analytics

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
)

func TestMemory(t *testing.T) {
	testStore(t, func(t *testing.T, limits Limits) Store { return NewMemory(limits) })
}

// TestMemoryForgets: a day leaves with its retention, a sequence number
// a day after its last report, as Redis's expiry does.
func TestMemoryForgets(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	m := newMemory(Limits{Retention: 48 * time.Hour}, func() time.Time { return clock })
	day := DayOf(clock)
	is.NoErr(m.Apply(ctx, Batch{Sent: []Mark{{Seq: 1, Day: day, Type: "t"}}}))
	is.Equal(len(m.seen), 1)

	clock = clock.Add(25 * time.Hour)
	is.NoErr(m.Apply(ctx, Batch{Sent: []Mark{{Seq: 1, Day: day, Type: "t"}}})) // forgotten: counts again
	rows, err := m.Query(ctx, day, day, "")
	is.NoErr(err)
	is.Equal(rows[0].Sent, int64(2))

	clock = (day + 3).Start() // the day ended two days ago: gone
	rows, err = m.Query(ctx, day, day, "")
	is.NoErr(err)
	is.Equal(len(rows), 0)
	is.NoErr(m.Apply(ctx, Batch{Sent: []Mark{{Seq: 2, Day: day, Type: "t"}}}))
	is.Equal(len(m.days), 0) // a report about a day no longer kept is dropped
}

// failing is a store that refuses while down.
type failing struct {
	Store
	down bool
}

func (f *failing) Apply(ctx context.Context, b Batch) error {
	if f.down {
		return context.DeadlineExceeded
	}
	return f.Store.Apply(ctx, b)
}

func TestRecorderKeepsReportsWhileTheStoreRefuses(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	store := &failing{Store: NewMemory(Limits{}), down: true}
	r := NewRecorder(store, RecorderOptions{MaxPending: 5})
	now := time.Now().UTC()
	day := DayOf(now)
	r.Published([]broker.Notification{{Seq: 1, Type: "t", Timestamp: now}, {Seq: 2, Type: "t", Timestamp: now}})
	r.Read("t", now, now.Add(time.Minute))
	r.Read("t", now, now.Add(time.Minute)) // the same bucket: no more room taken
	is.True(r.Flush(ctx) != nil)
	r.Delivered(broker.Notification{Seq: 1, Type: "t", Timestamp: now}, 1)
	r.Delivered(broker.Notification{Seq: 2, Type: "t", Timestamp: now}, 1)
	r.Delivered(broker.Notification{Seq: 3, Type: "t", Timestamp: now}, 1) // past MaxPending: dropped
	is.Equal(r.size, 5)
	is.Equal(r.dropped, int64(1))

	store.down = false
	is.NoErr(r.Flush(ctx))
	rows, err := store.Query(ctx, day, day, "")
	is.NoErr(err)
	is.Equal([]int64{rows[0].Sent, rows[0].Delivered, rows[0].Read}, []int64{2, 2, 2})
	is.Equal(r.size, 0)
}

func TestRecorderRunFlushesOnStop(t *testing.T) {
	is := is.New(t)
	store := NewMemory(Limits{})
	r := NewRecorder(store, RecorderOptions{FlushEvery: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	now := time.Now().UTC()
	r.Published([]broker.Notification{{Seq: 1, Type: "t", Timestamp: now}})
	cancel()
	is.NoErr(<-done)
	rows, err := store.Query(context.Background(), DayOf(now), DayOf(now), "")
	is.NoErr(err)
	is.Equal(rows[0].Sent, int64(1))
}
