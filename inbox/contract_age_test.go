package inbox

import (
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
)

// Age retention (Limits.MaxAge), the same for every store: applied by each
// read on a fake clock, at the boundary, to an append of an old
// notification, and together with MaxPerUser. newStore gives a store whose
// notion of now is the clock it returns; tick is the store's time
// resolution (memory: a nanosecond; Redis: a millisecond, as broker.Now
// stamps).

// clock is a fake time for one test goroutine.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

// noteAt is note with a Timestamp of the caller's choosing.
func noteAt(user string, seq uint64, ts time.Time) broker.Notification {
	n := note(user, seq)
	n.Timestamp = ts
	return n
}

func testAgeRetention(t *testing.T, newStore func(t *testing.T, limits Limits) (Store, *clock), tick time.Duration) {
	t.Run("max age trims before reading", func(t *testing.T) {
		is := is.New(t)
		s, c := newStore(t, Limits{MaxAge: 10 * time.Minute})
		t0 := c.now()
		appendAll(t, s, noteAt("alice", 1, t0))
		c.advance(time.Minute)
		appendAll(t, s, noteAt("alice", 2, c.now()))
		c.advance(time.Minute)
		appendAll(t, s, noteAt("alice", 3, c.now()))

		// Nobody appends from here on: every read applies age itself.
		c.advance(8*time.Minute + 30*time.Second) // seq 1 is 10m30s old
		unread, err := s.Unread(t.Context(), "alice")
		is.NoErr(err)
		is.Equal(unread, 2)
		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{3, 2})
		is.Equal(page.Total, 2)
		_, err = s.Since(t.Context(), "alice", 0)
		is.True(errors.Is(err, ErrTrimmed))
		missed, err := s.Since(t.Context(), "alice", 1)
		is.NoErr(err)
		is.Equal(notificationSeqs(missed), []uint64{2, 3})

		c.advance(time.Hour) // everything is old
		missed, err = s.Since(t.Context(), "alice", 3)
		is.NoErr(err)
		is.Equal(len(missed), 0)
		_, err = s.Since(t.Context(), "alice", 2)
		is.True(errors.Is(err, ErrTrimmed))
		_, _, err = s.MarkRead(t.Context(), "alice", idOf(3), c.now())
		is.True(errors.Is(err, ErrNotFound))
		changed, err := s.MarkAllRead(t.Context(), "alice", c.now())
		is.NoErr(err)
		is.Equal(changed, 0)
		page, err = s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(page.Total, 0)
		is.Equal(page.Unread, 0)
	})

	t.Run("max age boundary", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			age  time.Duration
			kept bool
		}{
			{name: "younger", age: time.Hour - tick, kept: true},
			{name: "exactly max age", age: time.Hour, kept: true},
			{name: "older", age: time.Hour + tick, kept: false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				is := is.New(t)
				s, c := newStore(t, Limits{MaxAge: time.Hour})
				appendAll(t, s, noteAt("alice", 1, c.now()))
				c.advance(tt.age)
				page, err := s.List(t.Context(), "alice", Query{Limit: 10})
				is.NoErr(err)
				is.Equal(page.Total == 1, tt.kept)
				_, err = s.Since(t.Context(), "alice", 0)
				is.Equal(err == nil, tt.kept)
			})
		}
	})

	t.Run("an append of an old notification is trimmed at once", func(t *testing.T) {
		is := is.New(t)
		s, c := newStore(t, Limits{MaxAge: time.Hour})
		appendAll(t, s, noteAt("alice", 1, c.now().Add(-2*time.Hour)))

		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(page.Total, 0)
		is.Equal(page.Unread, 0)
		_, err = s.Since(t.Context(), "alice", 0)
		is.True(errors.Is(err, ErrTrimmed)) // lost, so a replay from before it cannot be complete
	})

	t.Run("whichever limit is reached first", func(t *testing.T) {
		is := is.New(t)
		s, c := newStore(t, Limits{MaxPerUser: 3, MaxAge: 10 * time.Minute})
		for seq := range uint64(5) {
			appendAll(t, s, noteAt("alice", seq+1, c.now()))
			c.advance(3 * time.Minute)
		}
		// Count keeps seqs 3..5, stamped 6, 9 and 12 minutes after the
		// start. Now it is 15 minutes after: seq 3 is 9 minutes old, still
		// kept.
		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{5, 4, 3})

		c.advance(2 * time.Minute) // seq 3 is now 11 minutes old
		page, err = s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{5, 4})
		_, err = s.Since(t.Context(), "alice", 2)
		is.True(errors.Is(err, ErrTrimmed))
		missed, err := s.Since(t.Context(), "alice", 3)
		is.NoErr(err)
		is.Equal(notificationSeqs(missed), []uint64{4, 5})
	})
}
