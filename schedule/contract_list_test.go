package schedule

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
)

// testListing is the listing part of the contract: pages in order, a
// listing continued across adds, fires and cancels, and what List counts.
func testListing(t *testing.T, newScheduler newSchedulerFunc) {
	t.Run("PagesInOrder", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		base := broker.Now().Add(time.Hour) // a whole millisecond
		// Within one millisecond the id decides, not the time within it.
		want := []Item{
			withID(newItem(base.Add(-time.Millisecond), "alice"), "z"),
			withID(newItem(base.Add(900*time.Microsecond), "alice"), "a"),
			withID(newItem(base, "bob"), "b"),
			withID(newItem(base.Add(400*time.Microsecond)), "c"),
			withID(newItem(base, "alice", "bob"), "d"),
			withID(newItem(base.Add(time.Millisecond), "alice"), "0"),
			withID(newItem(base.Add(time.Hour), "bob"), "e"),
		}
		for _, i := range []int{4, 6, 0, 2, 5, 1, 3} {
			is.NoErr(s.Add(ctx, want[i]))
		}
		is.Equal(listAll(t, s, ""), want)
		// Every page size, each page counting all the items.
		for limit := 1; limit <= len(want)+1; limit++ {
			is.Equal(listPages(t, s, Query{Limit: limit}, len(want)), want)
		}
		is.Equal(listPages(t, s, Query{UserID: "alice", Limit: 1}, 4), []Item{want[0], want[1], want[4], want[5]})
		is.Equal(listPages(t, s, Query{UserID: "bob", Limit: 2}, 3), []Item{want[2], want[4], want[6]})

		// A cursor past the last item, and one between items whose own
		// item never existed, are places like any other.
		page, err := s.List(ctx, Query{Limit: 10, After: Cursor{At: base.Add(2 * time.Hour).UnixMilli(), ID: "x"}})
		is.NoErr(err)
		is.Equal(len(page.Items), 0)
		is.Equal(page.Total, len(want))
		is.True(page.Next.IsZero())
		page, err = s.List(ctx, Query{Limit: 2, After: Cursor{At: base.UnixMilli(), ID: "bb"}})
		is.NoErr(err)
		is.Equal(page.Items, []Item{want[3], want[4]})
		is.Equal(page.Next, Cursor{At: base.UnixMilli(), ID: "d"})
	})

	for _, userID := range []string{"", "alice"} {
		t.Run("PagesAcrossChanges/user="+userID, func(t *testing.T) {
			is := is.New(t)
			ctx := t.Context()
			s := newScheduler(t, Limits{})
			now := broker.Now()
			soon := newItem(now.Add(50*time.Millisecond), "alice")
			a := newItem(now.Add(time.Hour), "alice")
			b := newItem(now.Add(2*time.Hour), "alice")
			c := newItem(now.Add(3*time.Hour), "alice")
			broadcast := newItem(now.Add(3*time.Hour + 30*time.Minute))
			d := newItem(now.Add(4*time.Hour), "alice")
			e := newItem(now.Add(5*time.Hour), "alice")
			for _, it := range []Item{e, d, c, b, a, soon, broadcast} {
				is.NoErr(s.Add(ctx, it))
			}
			total := 6
			if userID == "" {
				total++
			}
			q := Query{UserID: userID, Limit: 2}
			first, err := s.List(ctx, q)
			is.NoErr(err)
			is.Equal(first.Items, []Item{soon, a})
			is.Equal(first.Total, total)
			is.Equal(first.Next, cursorOf(a))

			// Between pages: the first page's first item fires, its last
			// (the cursor's own item) and a later one are cancelled, and
			// items are added before the cursor, at the same time as a
			// later item, and at the end.
			rec := startRun(t, s)
			is.Equal(rec.next(t).Item.ID, soon.ID)
			for _, it := range []Item{a, c} {
				_, err := s.Cancel(ctx, it.ID)
				is.NoErr(err)
			}
			before := newItem(now.Add(30*time.Minute), "alice")
			twin := withID(newItem(b.ScheduledAt, "alice"), b.ID+"-twin") // sorts right after b
			f := newItem(now.Add(6*time.Hour), "alice")
			for _, it := range []Item{before, twin, f} {
				is.NoErr(s.Add(ctx, it))
			}

			want := []Item{b, twin, d, e, f}
			if userID == "" {
				want = []Item{b, twin, broadcast, d, e, f}
			}
			q.After = first.Next
			// Counted now: before, b, twin, d, e, f (and the broadcast).
			is.Equal(listPages(t, s, q, total), want) // nothing twice, nothing skipped, before unseen
			rec.drain(t, s)
		})
	}

	t.Run("PagesWithinOneMillisecond", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		at := broker.Now().Add(time.Hour)
		var want []Item
		for range 100 {
			it := newItem(at, "alice")
			want = append(want, it)
			is.NoErr(s.Add(ctx, it))
		}
		slices.SortFunc(want, func(a, b Item) int { return strings.Compare(a.ID, b.ID) })
		// Each page's last item is cancelled before the next page is
		// read: the place is found among equal times all the same.
		var got []Item
		q := Query{UserID: "alice", Limit: 7}
		for {
			page, err := s.List(ctx, q)
			is.NoErr(err)
			got = append(got, page.Items...)
			if page.Next.IsZero() {
				break
			}
			_, err = s.Cancel(ctx, page.Next.ID)
			is.NoErr(err)
			q.After = page.Next
		}
		is.Equal(got, want)
	})

	t.Run("InFlightNotListed", func(t *testing.T) {
		is := is.New(t)
		ctx := t.Context()
		s := newScheduler(t, Limits{})
		held := hold(t, s)
		it := newItem(broker.Now(), "alice", "bob") // to both
		later := newItem(broker.Now().Add(time.Hour), "alice")
		carols := newItem(broker.Now().Add(2*time.Hour), "carol")
		is.NoErr(s.Add(ctx, it))
		is.NoErr(s.Add(ctx, later))
		is.NoErr(s.Add(ctx, carols))
		held.firing(t, it.ID)
		// Claimed for firing: neither listed nor counted (listPages checks
		// each page's total against the one given), whichever side a
		// user's count walks: alice's index (2) is larger than what is in
		// flight (1), bob's (1, the held item) and carol's (1) are not.
		is.Equal(listPages(t, s, Query{UserID: "alice", Limit: 2}, 1), []Item{later})
		is.Equal(len(listPages(t, s, Query{UserID: "bob", Limit: 2}, 0)), 0)
		is.Equal(listPages(t, s, Query{UserID: "carol", Limit: 2}, 1), []Item{carols})
		is.Equal(listPages(t, s, Query{Limit: 2}, 2), []Item{later, carols})
	})

	t.Run("LimitNotPositive", func(t *testing.T) {
		is := is.New(t)
		s := newScheduler(t, Limits{})
		_, err := s.List(t.Context(), Query{})
		is.True(err != nil)
		is.True(!errors.Is(err, ErrNotFound))
	})
}

// listAll lists userID's items (every item when empty) two at a time, so
// every listing in the contract pages, and checks that each page counts
// them all.
func listAll(t *testing.T, s Scheduler, userID string) []Item {
	t.Helper()
	page, err := s.List(t.Context(), Query{UserID: userID, Limit: 1})
	if err != nil {
		t.Fatalf("list %q: %v", userID, err)
	}
	return listPages(t, s, Query{UserID: userID, Limit: 2}, page.Total)
}

// listPages follows q's listing to its last page, checking the pages (each
// full but the last, no more than Limit, counting total) on the way.
func listPages(t *testing.T, s Scheduler, q Query, total int) []Item {
	t.Helper()
	var all []Item
	for {
		page, err := s.List(t.Context(), q)
		if err != nil {
			t.Fatalf("list %+v: %v", q, err)
		}
		if page.Total != total {
			t.Fatalf("list %+v: total %d, want %d", q, page.Total, total)
		}
		all = append(all, page.Items...)
		if page.Next.IsZero() {
			if len(page.Items) > q.Limit {
				t.Fatalf("list %+v: last page of %d items", q, len(page.Items))
			}
			return all
		}
		if len(page.Items) != q.Limit || page.Next != cursorOf(page.Items[len(page.Items)-1]) {
			t.Fatalf("list %+v: %d items and next %+v before the last page", q, len(page.Items), page.Next)
		}
		q.After = page.Next
	}
}

// withID gives it, and its notifications, the id id.
func withID(it Item, id string) Item {
	it.ID = id
	for i := range it.Notifications {
		it.Notifications[i].ID = id
	}
	return it
}

// holder is a FireFunc that holds every item in fire until done is
// called or the test ends, telling which item it holds.
type holder struct {
	fired   chan string
	release chan struct{}
	once    sync.Once
}

// hold runs s with a holder until the test ends.
func hold(t *testing.T, s Scheduler) *holder {
	t.Helper()
	h := &holder{fired: make(chan string, 16), release: make(chan struct{})}
	runWith(t, s, func(ctx context.Context, it Item) error {
		h.fired <- it.ID
		select {
		case <-h.release:
		case <-ctx.Done():
		}
		return nil
	})
	// Registered after runWith's cleanup, so it runs before it: Run is
	// stopped with nothing held.
	t.Cleanup(h.done)
	return h
}

// done lets every held fire, and every later one, return.
func (h *holder) done() { h.once.Do(func() { close(h.release) }) }

// firing waits until id is held in fire.
func (h *holder) firing(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-h.fired:
		if got != id {
			t.Fatalf("fired %s, want %s", got, id)
		}
	case <-time.After(eventTimeout):
		t.Fatalf("%s did not fire", id)
	}
}
