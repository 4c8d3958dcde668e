package schedule

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/internal/streamtest"
)

// testLimits is the bounds part of the contract: Add checks them and stores
// in one step, all or nothing for a batch, and counts items until they are
// delivered or cancelled.
func testLimits(t *testing.T, newScheduler newSchedulerFunc) {
	t.Run("PerUserConcurrent", func(t *testing.T) {
		is := is.New(t)
		s := newScheduler(t, Limits{PerUser: 5})
		added, refused := addAtOnce(t, 20, func(int) error {
			return s.Add(t.Context(), newItem(broker.Now().Add(time.Hour), "alice"))
		})
		is.Equal(added, 5) // exactly the bound, however the Adds interleave
		for _, err := range refused {
			is.True(errors.Is(err, ErrUserLimit))
			var le *LimitError
			is.True(errors.As(err, &le))
			is.Equal(*le, LimitError{UserID: "alice", Limit: 5})
		}
		is.Equal(len(listAll(t, s, "alice")), 5)
		// Another user has a bound of its own, and broadcasts none.
		is.NoErr(s.Add(t.Context(), newItem(broker.Now().Add(time.Hour), "bob")))
		is.NoErr(s.Add(t.Context(), newItem(broker.Now().Add(time.Hour))))
	})

	t.Run("TotalConcurrent", func(t *testing.T) {
		is := is.New(t)
		s := newScheduler(t, Limits{Total: 5, PerUser: 100})
		added, refused := addAtOnce(t, 20, func(i int) error {
			if i%2 == 0 {
				return s.Add(t.Context(), newItem(broker.Now().Add(time.Hour))) // broadcast
			}
			return s.Add(t.Context(), newItem(broker.Now().Add(time.Hour), "alice", "bob"))
		})
		is.Equal(added, 5)
		for _, err := range refused {
			is.True(errors.Is(err, ErrTotalLimit))
			var le *LimitError
			is.True(errors.As(err, &le))
			is.Equal(*le, LimitError{Limit: 5})
		}
		is.Equal(len(listAll(t, s, "")), 5)
	})

	t.Run("BatchAllOrNothing", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{PerUser: 2})
		for range 2 {
			is.NoErr(s.Add(ctx, newItem(broker.Now().Add(time.Hour), "alice")))
		}
		batch := newItem(broker.Now().Add(time.Hour), "bob", "alice", "carol")
		err := s.Add(ctx, batch)
		is.True(errors.Is(err, ErrUserLimit))
		var le *LimitError
		is.True(errors.As(err, &le))
		is.Equal(le.UserID, "alice") // names the user at the bound
		_, err = s.Get(ctx, batch.ID)
		is.True(errors.Is(err, ErrNotFound))
		is.Equal(len(listAll(t, s, "bob")), 0) // nothing stored for the others
		is.Equal(len(listAll(t, s, "")), 2)
		// Nor counted: bob and carol still have both their slots.
		is.NoErr(s.Add(ctx, newItem(broker.Now().Add(time.Hour), "bob", "carol")))
		is.NoErr(s.Add(ctx, newItem(broker.Now().Add(time.Hour), "bob", "carol")))
	})

	t.Run("DuplicateBeforeLimit", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{PerUser: 1, Total: 1})
		it := newItem(broker.Now().Add(time.Hour), "alice")
		is.NoErr(s.Add(ctx, it))
		// A retry of an Add that succeeded learns that it did, not that
		// its own item fills the bound.
		is.True(errors.Is(s.Add(ctx, it), ErrDuplicate))
	})

	t.Run("CountedUntilDeliveredOrCancelled", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{PerUser: 2, Total: 3})
		held := hold(t, s)
		firing := newItem(broker.Now(), "alice")
		is.NoErr(s.Add(ctx, firing))
		held.firing(t, firing.ID)
		pending := newItem(broker.Now().Add(time.Hour), "alice")
		is.NoErr(s.Add(ctx, pending))

		// The item being fired is not listed, but holds its slots: a
		// failed fire would put it back.
		is.Equal(listAll(t, s, "alice"), []Item{pending})
		next := newItem(broker.Now().Add(2*time.Hour), "alice")
		is.True(errors.Is(s.Add(ctx, next), ErrUserLimit))
		broadcast := newItem(broker.Now().Add(time.Hour))
		is.NoErr(s.Add(ctx, broadcast)) // the third
		is.True(errors.Is(s.Add(ctx, newItem(broker.Now().Add(time.Hour))), ErrTotalLimit))

		// Cancelled, an item frees its slots at once.
		_, err := s.Cancel(ctx, broadcast.ID)
		is.NoErr(err)
		is.True(errors.Is(s.Add(ctx, next), ErrUserLimit)) // alice's are still taken
		// Delivered, it frees them too (in Redis once acked, off the
		// firing path).
		held.done()
		streamtest.Eventually(t, "the delivered item's slot", func() bool {
			err := s.Add(ctx, next)
			if err != nil && !errors.Is(err, ErrUserLimit) {
				t.Fatalf("add: %v", err)
			}
			return err == nil
		})
		is.Equal(listAll(t, s, "alice"), []Item{pending, next})
	})
}

// addAtOnce runs add(0) to add(n-1) at the same moment and returns how
// many succeeded and the errors of the others.
func addAtOnce(t *testing.T, n int, add func(i int) error) (added int, refused []error) {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = add(i)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			added++
		} else {
			refused = append(refused, err)
		}
	}
	return added, refused
}
