package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/matryer/is"
)

func TestMemory(t *testing.T) {
	testScheduler(t, func(t *testing.T, limits Limits) Scheduler { return NewMemory(nil, limits) })
}

// The tests below run in a synctest bubble: the clock is fake and only
// moves when every goroutine in the bubble is blocked, so due times are
// checked exactly, not within a tolerance.

func TestMemoryFiresExactlyOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := is.New(t)
		m := NewMemory(nil, Limits{})
		rec := startRun(t, m)
		start := time.Now()
		it := newItem(start.Add(time.Hour), "alice")
		is.NoErr(m.Add(t.Context(), it))

		f := <-rec.calls
		is.Equal(f.Item, it)
		is.Equal(f.At.Sub(it.ScheduledAt), time.Duration(0)) // no lateness
		is.Equal(time.Since(start), time.Hour)
	})
}

func TestMemoryPastFiresAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := is.New(t)
		m := NewMemory(nil, Limits{})
		rec := startRun(t, m)
		synctest.Wait()
		start := time.Now()
		it := newItem(start.Add(-time.Hour), "alice")
		is.NoErr(m.Add(t.Context(), it))

		f := <-rec.calls
		is.Equal(f.Item.ID, it.ID)
		is.Equal(f.At, start) // no time passed
	})
}

func TestMemoryEarlierAddRearms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := is.New(t)
		m := NewMemory(nil, Limits{})
		start := time.Now()
		later := newItem(start.Add(time.Hour), "alice")
		is.NoErr(m.Add(t.Context(), later))
		rec := startRun(t, m)
		synctest.Wait() // Run's timer is armed for the hour

		sooner := newItem(start.Add(10*time.Minute), "bob")
		is.NoErr(m.Add(t.Context(), sooner))

		f := <-rec.calls
		is.Equal(f.Item.ID, sooner.ID)
		is.Equal(f.At, sooner.ScheduledAt) // not held back to the hour
		f = <-rec.calls
		is.Equal(f.Item.ID, later.ID)
		is.Equal(f.At, later.ScheduledAt)
	})
}

func TestMemoryCancelEarliestRearms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := is.New(t)
		m := NewMemory(nil, Limits{})
		start := time.Now()
		first := newItem(start.Add(10*time.Minute), "alice")
		second := newItem(start.Add(20*time.Minute), "alice")
		is.NoErr(m.Add(t.Context(), first))
		is.NoErr(m.Add(t.Context(), second))
		rec := startRun(t, m)
		synctest.Wait() // Run's timer is armed for first

		_, err := m.Cancel(t.Context(), first.ID)
		is.NoErr(err)

		f := <-rec.calls
		is.Equal(f.Item.ID, second.ID)
		is.Equal(f.At, second.ScheduledAt)
		synctest.Wait()
		is.Equal(len(rec.calls), 0) // first never fired
	})
}

func TestMemoryTiesFireByCreatedAtThenID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := is.New(t)
		m := NewMemory(nil, Limits{})
		now := time.Now()
		at := now.Add(time.Minute)
		mk := func(id string, created time.Time) Item {
			it := newItem(at, "alice")
			it.ID, it.CreatedAt = id, created
			return it
		}
		// Added in the reverse of the order they must fire in.
		items := []Item{mk("b", now), mk("a", now), mk("z", now.Add(-time.Second))}
		for _, it := range items {
			is.NoErr(m.Add(t.Context(), it))
		}
		rec := startRun(t, m)

		for _, want := range []string{"z", "a", "b"} {
			f := <-rec.calls
			is.Equal(f.Item.ID, want)
			is.Equal(f.At, at)
		}
	})
}

func TestMemoryRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := is.New(t)
		var logs bytes.Buffer
		m := NewMemory(slog.New(slog.NewJSONHandler(&logs, nil)), Limits{})
		rec := &recorder{calls: make(chan fired, 16), fails: make(map[string]int)}
		runWith(t, m, func(ctx context.Context, it Item) error {
			err := rec.fire(ctx, it)
			// A FireFunc stamps what it publishes; that must not leak
			// into the item kept for the retry.
			it.Notifications[0].Timestamp = time.Now()
			return err
		})
		it := newItem(time.Now().Add(time.Minute), "alice")
		rec.failNext(it.ID, 1)
		is.NoErr(m.Add(t.Context(), it))

		first := <-rec.calls
		is.True(first.Err != nil)
		is.Equal(first.At, it.ScheduledAt)
		synctest.Wait() // Run has put the item back

		// Pending again, with the ScheduledAt it was added with.
		got, err := m.Get(t.Context(), it.ID)
		is.NoErr(err)
		is.Equal(got, it)
		is.Equal(listAll(t, m, "alice"), []Item{it})

		var entry struct {
			Level, Msg, ID, Error string
		}
		is.NoErr(json.Unmarshal(logs.Bytes(), &entry))
		is.Equal(entry.Level, "ERROR")
		is.Equal(entry.ID, it.ID)
		is.Equal(entry.Error, "test: publish failed")

		second := <-rec.calls
		is.NoErr(second.Err)
		is.Equal(second.Item, it)
		is.Equal(second.At.Sub(first.At), retryDelay)
		_, err = m.Get(t.Context(), it.ID)
		is.True(errors.Is(err, ErrNotFound))
	})
}

func TestMemoryCancelDuringRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := is.New(t)
		m := NewMemory(nil, Limits{})
		rec := startRun(t, m)
		it := newItem(time.Now().Add(time.Minute), "alice")
		rec.failNext(it.ID, 1)
		is.NoErr(m.Add(t.Context(), it))

		f := <-rec.calls
		is.True(f.Err != nil)
		synctest.Wait()
		got, err := m.Cancel(t.Context(), it.ID)
		is.NoErr(err)
		is.Equal(got, it)

		time.Sleep(10 * retryDelay) // fake time: the retry would be long due
		synctest.Wait()
		is.Equal(len(rec.calls), 0) // never fired again
	})
}

func TestMemoryStopMidBatchKeepsUnfired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := is.New(t)
		m := NewMemory(nil, Limits{})
		at := time.Now().Add(time.Minute)
		var items []Item
		for range 3 {
			it := newItem(at, "alice")
			items = append(items, it)
			is.NoErr(m.Add(t.Context(), it))
		}

		ctx, cancel := context.WithCancel(t.Context())
		var fired []string
		err := m.Run(ctx, func(_ context.Context, it Item) error {
			fired = append(fired, it.ID)
			cancel() // shut down while the other two are claimed
			return nil
		})
		is.NoErr(err)

		is.Equal(len(fired), 1)
		left := listAll(t, m, "")
		is.Equal(len(left), 2) // claimed but unfired items stay pending
		for _, it := range left {
			is.True(it.ID != fired[0])
			is.Equal(it.ScheduledAt, at)
		}
	})
}

// TestMemoryOneTimer checks that pending items cost no goroutines: Run
// waits on one timer for the earliest, however many are pending.
func TestMemoryOneTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := is.New(t)
		m := NewMemory(nil, Limits{})
		rec := startRun(t, m)
		synctest.Wait()
		before := runtime.NumGoroutine()

		start := time.Now()
		const n = 10_000
		// NumGoroutine is process-wide and counts the runtime's finalizer
		// goroutine while it runs, so allow a little noise: a goroutine
		// per item would add n.
		const slack = 10
		tmpl := newItem(start, "alice")
		for i := range n {
			it := tmpl
			it.ID = tmpl.ID + "-" + strconv.Itoa(i)
			it.ScheduledAt = start.Add(time.Hour + time.Duration(n-i)*time.Second)
			is.NoErr(m.Add(t.Context(), it))
		}
		synctest.Wait()
		is.True(runtime.NumGoroutine()-before < slack) // no goroutine per item

		f := <-rec.calls // the earliest, added last
		is.Equal(f.At, start.Add(time.Hour+time.Second))
		synctest.Wait()
		is.True(runtime.NumGoroutine()-before < slack)
	})
}
