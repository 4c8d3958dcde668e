package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
)

// Timing bounds for the contract. They are real time, so they hold for a
// scheduler backed by Redis as well as for Memory.
const (
	// maxLateness is how late after ScheduledAt an item may fire.
	maxLateness = 100 * time.Millisecond
	// eventTimeout bounds every wait for something that must happen.
	eventTimeout = 5 * time.Second
)

// newSchedulerFunc returns an empty scheduler held to limits, whose
// resources are released by t.Cleanup.
type newSchedulerFunc func(t *testing.T, limits Limits) Scheduler

// testScheduler is the contract every Scheduler meets; Run is started by
// the tests themselves. Listing and bounds are in contract_list_test.go
// and contract_limits_test.go.
func testScheduler(t *testing.T, newScheduler newSchedulerFunc) {
	testListing(t, newScheduler)
	testLimits(t, newScheduler)

	t.Run("AddGetListCancel", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		now := broker.Now()
		later := newItem(now.Add(2*time.Hour), "alice")
		sooner := newItem(now.Add(time.Hour), "bob")
		is.NoErr(s.Add(ctx, later))
		is.NoErr(s.Add(ctx, sooner))

		got, err := s.Get(ctx, later.ID)
		is.NoErr(err)
		is.Equal(got, later)

		all := listAll(t, s, "")
		is.Equal(all, []Item{sooner, later}) // earliest first

		cancelled, err := s.Cancel(ctx, sooner.ID)
		is.NoErr(err)
		is.Equal(cancelled, sooner)
		_, err = s.Get(ctx, sooner.ID)
		is.True(errors.Is(err, ErrNotFound))
		_, err = s.Cancel(ctx, sooner.ID)
		is.True(errors.Is(err, ErrNotFound))
		all = listAll(t, s, "")
		is.Equal(all, []Item{later})
	})

	t.Run("UnknownID", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		_, err := s.Get(ctx, "no-such-item")
		is.True(errors.Is(err, ErrNotFound))
		_, err = s.Cancel(ctx, "no-such-item")
		is.True(errors.Is(err, ErrNotFound))
		items := listAll(t, s, "")
		is.Equal(len(items), 0)
	})

	t.Run("DuplicateID", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		it := newItem(broker.Now().Add(time.Hour), "alice")
		is.NoErr(s.Add(ctx, it))
		dup := newItem(broker.Now().Add(2*time.Hour), "bob")
		dup.ID = it.ID
		err := s.Add(ctx, dup)
		is.True(errors.Is(err, ErrDuplicate)) // duplicate id rejected, as Add documents
		got, err := s.Get(ctx, it.ID)
		is.NoErr(err)
		is.Equal(got, it) // the first item is untouched
	})

	t.Run("DuplicateIDWhileFiring", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		firing := make(chan struct{})
		release := make(chan struct{})
		runWith(t, s, func(ctx context.Context, it Item) error {
			close(firing)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
		defer close(release) // before runWith's cleanup stops Run
		it := newItem(broker.Now(), "alice")
		is.NoErr(s.Add(ctx, it))
		select {
		case <-firing:
		case <-time.After(eventTimeout):
			t.Fatal("the item did not fire")
		}
		dup := newItem(broker.Now().Add(time.Hour), "bob")
		dup.ID = it.ID
		err := s.Add(ctx, dup)
		is.True(errors.Is(err, ErrDuplicate)) // an id being fired is taken too
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		it := newItem(broker.Now().Add(time.Hour), "alice")
		want := it
		want.Notifications = slices.Clone(it.Notifications)
		is.NoErr(s.Add(ctx, it))
		it.Notifications[0].Title = "changed after Add"

		got, err := s.Get(ctx, it.ID)
		is.NoErr(err)
		is.Equal(got, want)
		got.Notifications[0].Title = "changed after Get"
		got.Notifications[0].Channels[0] = "changed after Get"

		listed := listAll(t, s, "")
		is.Equal(listed, []Item{want})
	})

	t.Run("ListByUser", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		now := broker.Now()
		both := newItem(now.Add(3*time.Hour), "alice", "bob")
		alice := newItem(now.Add(2*time.Hour), "alice")
		bob := newItem(now.Add(time.Hour), "bob")
		broadcast := newItem(now.Add(4 * time.Hour))
		aliceEarly := newItem(now.Add(time.Minute), "alice")
		for _, it := range []Item{both, alice, bob, broadcast, aliceEarly} {
			is.NoErr(s.Add(ctx, it))
		}

		got := listAll(t, s, "alice")
		is.Equal(got, []Item{aliceEarly, alice, both})
		got = listAll(t, s, "bob")
		is.Equal(got, []Item{bob, both})
		got = listAll(t, s, "carol")
		is.Equal(len(got), 0)
		got = listAll(t, s, "")
		is.Equal(got, []Item{aliceEarly, bob, alice, both, broadcast})
	})

	t.Run("FiresOnceOnTime", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		rec := startRun(t, s)
		// Due well after Add returns, so the timer path is what is timed.
		it := newItem(broker.Now().Add(time.Second), "alice")
		is.NoErr(s.Add(ctx, it))

		f := rec.next(t)
		is.Equal(f.Item, it)
		is.True(!f.At.Before(it.ScheduledAt)) // not early
		late := f.At.Sub(it.ScheduledAt)
		is.True(late < maxLateness) // fired on time
		t.Logf("lateness %v", late)

		// Claimed for firing: no longer pending.
		_, err := s.Get(ctx, it.ID)
		is.True(errors.Is(err, ErrNotFound))
		_, err = s.Cancel(ctx, it.ID)
		is.True(errors.Is(err, ErrNotFound))
		rec.drain(t, s) // and never fired again
	})

	t.Run("PastFiresAtOnce", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		rec := startRun(t, s)
		it := newItem(broker.Now().Add(-time.Hour), "alice")
		is.NoErr(s.Add(ctx, it))
		added := time.Now() // a slow Add is not the scheduler's lateness

		f := rec.next(t)
		is.Equal(f.Item.ID, it.ID)
		is.True(f.At.Sub(added) < maxLateness) // fired at once
		rec.drain(t, s)
	})

	t.Run("AddBeforeRun", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		past := newItem(broker.Now().Add(-time.Minute), "alice")
		soon := newItem(broker.Now().Add(time.Second), "bob") // due after Run has started
		is.NoErr(s.Add(ctx, past))
		is.NoErr(s.Add(ctx, soon))
		rec := startRun(t, s)

		is.Equal(rec.next(t).Item.ID, past.ID)
		f := rec.next(t)
		is.Equal(f.Item.ID, soon.ID)
		is.True(!f.At.Before(soon.ScheduledAt))
		is.True(f.At.Sub(soon.ScheduledAt) < maxLateness)
		rec.drain(t, s)
	})

	t.Run("CancelBeforeDue", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		rec := startRun(t, s)
		now := broker.Now()
		// Due after the Adds and the Cancel have surely returned.
		cancelled := newItem(now.Add(time.Second), "alice")
		kept := newItem(now.Add(1050*time.Millisecond), "alice")
		is.NoErr(s.Add(ctx, cancelled))
		is.NoErr(s.Add(ctx, kept))

		got, err := s.Cancel(ctx, cancelled.ID)
		is.NoErr(err)
		is.Equal(got, cancelled)
		_, err = s.Get(ctx, cancelled.ID)
		is.True(errors.Is(err, ErrNotFound))

		// kept is due after cancelled, so had cancelled fired it would
		// have come first.
		is.Equal(rec.next(t).Item.ID, kept.ID)
		rec.drain(t, s)
	})

	t.Run("ManyFireOnceInOrder", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		const n = 200
		base := broker.Now().Add(50 * time.Millisecond)
		want := make(map[string]Item, n)
		for range n {
			offset := time.Duration(rand.IntN(300)) * time.Millisecond
			it := newItem(base.Add(offset), "alice")
			want[it.ID] = it
			is.NoErr(s.Add(ctx, it))
		}
		// Run starts after every Add, so no item can be added behind one
		// that already fired and order is the whole story.
		rec := startRun(t, s)

		var prev time.Time
		for range n {
			f := rec.next(t)
			it, ok := want[f.Item.ID]
			is.True(ok) // fired once, and only items that were added
			delete(want, f.Item.ID)
			is.True(!f.Item.ScheduledAt.Before(prev)) // in due order
			prev = f.Item.ScheduledAt
			is.True(!f.At.Before(it.ScheduledAt)) // not early
		}
		is.Equal(len(want), 0)
		rec.drain(t, s)
		items := listAll(t, s, "")
		is.Equal(len(items), 0)
	})

	t.Run("RetryAfterFireError", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		rec := startRun(t, s)
		it := newItem(broker.Now().Add(50*time.Millisecond), "alice")
		rec.failNext(it.ID, 1)
		is.NoErr(s.Add(ctx, it))

		first := rec.next(t)
		is.Equal(first.Item, it)
		is.True(first.Err != nil) // first attempt failed
		second := rec.next(t)
		is.Equal(second.Item, it) // retried with the item unchanged
		is.NoErr(second.Err)
		is.True(second.At.After(first.At))

		_, err := s.Get(ctx, it.ID)
		is.True(errors.Is(err, ErrNotFound))
		rec.drain(t, s) // delivered, so never fired a third time
	})

	t.Run("RunReturnsOnCancel", func(t *testing.T) {
		is := is.New(t)
		s := newScheduler(t, Limits{})
		it := newItem(broker.Now().Add(time.Hour), "alice")
		is.NoErr(s.Add(t.Context(), it))

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- s.Run(ctx, func(context.Context, Item) error {
				return errors.New("test: nothing should fire")
			})
		}()
		cancel()
		select {
		case err := <-done:
			is.NoErr(err)
		case <-time.After(eventTimeout):
			t.Fatal("Run did not return after its context was cancelled")
		}

		got, err := s.Get(t.Context(), it.ID)
		is.NoErr(err)
		is.Equal(got, it) // still pending
	})
}

// newItem returns an item due at at, with one notification per user or a
// broadcast when users is empty. Times are UTC milliseconds, as broker.Now
// gives them, so they survive any store's round trip unchanged.
func newItem(at time.Time, users ...string) Item {
	id := broker.NewID()
	n := broker.Notification{
		ID:       id,
		Type:     "reminder",
		Title:    "Scheduled",
		Message:  "scheduled notification",
		Channels: []string{"in_app"},
		Data:     json.RawMessage(`{"n":1}`),
	}
	it := Item{ID: id, ScheduledAt: at, CreatedAt: broker.Now()}
	if len(users) == 0 {
		it.Notifications = []broker.Notification{n}
	}
	for _, u := range users {
		n.UserID = u
		n.Channels = []string{"in_app"}
		it.Notifications = append(it.Notifications, n)
	}
	return it
}

// fired is one call of the FireFunc a recorder gives Run.
type fired struct {
	Item Item
	At   time.Time // when fire was called
	Err  error     // what fire returned
}

// recorder is a FireFunc that reports every call on a channel and fails on
// demand.
type recorder struct {
	calls chan fired

	mu    sync.Mutex
	fails map[string]int // id → calls still to fail
}

// startRun runs s with a recorder until the test ends.
func startRun(t *testing.T, s Scheduler) *recorder {
	t.Helper()
	rec := &recorder{calls: make(chan fired, 1024), fails: make(map[string]int)}
	runWith(t, s, rec.fire)
	return rec
}

// runWith runs s with fire until the test ends, then checks that Run
// returned nil.
func runWith(t *testing.T, s Scheduler, fire FireFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, fire) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(eventTimeout):
			t.Error("Run did not return after its context was cancelled")
		}
	})
}

func (r *recorder) fire(ctx context.Context, it Item) error {
	at := time.Now()
	// Record the item as fire got it, whatever the caller does to it next.
	it.Notifications = slices.Clone(it.Notifications)
	var err error
	r.mu.Lock()
	if r.fails[it.ID] > 0 {
		r.fails[it.ID]--
		err = errors.New("test: publish failed")
	}
	r.mu.Unlock()
	select {
	case r.calls <- fired{Item: it, At: at, Err: err}:
	case <-ctx.Done():
	}
	return err
}

// failNext makes the next n fires of id fail.
func (r *recorder) failNext(id string, n int) {
	r.mu.Lock()
	r.fails[id] = n
	r.mu.Unlock()
}

// next waits for the next fire.
func (r *recorder) next(t *testing.T) fired {
	t.Helper()
	select {
	case f := <-r.calls:
		return f
	case <-time.After(eventTimeout):
		t.Fatal("timed out waiting for an item to fire")
		return fired{}
	}
}

// drain checks that nothing fires after what the test has seen: it adds a
// sentinel item due now and waits for it, failing if anything else fires
// first. Items fire in due order, so anything still due would come before
// the sentinel (or be fired by the time it is).
func (r *recorder) drain(t *testing.T, s Scheduler) {
	t.Helper()
	sentinel := newItem(broker.Now().Add(20*time.Millisecond), "sentinel")
	if err := s.Add(t.Context(), sentinel); err != nil {
		t.Fatalf("add sentinel: %v", err)
	}
	for {
		f := r.next(t)
		if f.Item.ID == sentinel.ID {
			return
		}
		t.Errorf("unexpected fire of %s (scheduled %v)", f.Item.ID, f.Item.ScheduledAt)
	}
}
