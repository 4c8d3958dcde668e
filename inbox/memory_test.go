package inbox

import (
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
)

func TestMemory(t *testing.T) {
	testStore(t, func(t *testing.T, limits Limits) Store { return NewMemory(limits) })
}

// clock is a fake time for one test goroutine.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newMemoryWithClock(limits Limits) (*Memory, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	m := NewMemory(limits)
	m.now = c.now
	return m, c
}

// noteAt is note with a Timestamp of the caller's choosing.
func noteAt(user string, seq uint64, ts time.Time) broker.Notification {
	n := note(user, seq)
	n.Timestamp = ts
	return n
}

func TestMemoryMaxAgeTrimsBeforeReading(t *testing.T) {
	is := is.New(t)
	m, c := newMemoryWithClock(Limits{MaxAge: 10 * time.Minute})
	t0 := c.now()
	appendAll(t, m, noteAt("alice", 1, t0))
	c.advance(time.Minute)
	appendAll(t, m, noteAt("alice", 2, c.now()))
	c.advance(time.Minute)
	appendAll(t, m, noteAt("alice", 3, c.now()))

	// Nobody appends from here on: every read applies age itself.
	c.advance(8*time.Minute + 30*time.Second) // seq 1 is 10m30s old
	unread, err := m.Unread(t.Context(), "alice")
	is.NoErr(err)
	is.Equal(unread, 2)
	page, err := m.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{3, 2})
	is.Equal(page.Total, 2)
	_, err = m.Since(t.Context(), "alice", 0)
	is.True(errors.Is(err, ErrTrimmed))
	missed, err := m.Since(t.Context(), "alice", 1)
	is.NoErr(err)
	is.Equal(notificationSeqs(missed), []uint64{2, 3})

	c.advance(time.Hour) // everything is old
	missed, err = m.Since(t.Context(), "alice", 3)
	is.NoErr(err)
	is.Equal(len(missed), 0)
	_, err = m.Since(t.Context(), "alice", 2)
	is.True(errors.Is(err, ErrTrimmed))
	_, _, err = m.MarkRead(t.Context(), "alice", idOf(3), c.now())
	is.True(errors.Is(err, ErrNotFound))
	changed, err := m.MarkAllRead(t.Context(), "alice", c.now())
	is.NoErr(err)
	is.Equal(changed, 0)
	page, err = m.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(page.Total, 0)
	is.Equal(page.Unread, 0)
}

func TestMemoryMaxAgeBoundary(t *testing.T) {
	tests := []struct {
		name string
		age  time.Duration
		kept bool
	}{
		{name: "younger", age: time.Hour - time.Nanosecond, kept: true},
		{name: "exactly max age", age: time.Hour, kept: true},
		{name: "older", age: time.Hour + time.Nanosecond, kept: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			m, c := newMemoryWithClock(Limits{MaxAge: time.Hour})
			appendAll(t, m, noteAt("alice", 1, c.now()))
			c.advance(tt.age)
			page, err := m.List(t.Context(), "alice", Query{Limit: 10})
			is.NoErr(err)
			is.Equal(page.Total == 1, tt.kept)
			_, err = m.Since(t.Context(), "alice", 0)
			is.Equal(err == nil, tt.kept)
		})
	}
}

func TestMemoryAppendOfOldNotificationIsTrimmedAtOnce(t *testing.T) {
	is := is.New(t)
	m, c := newMemoryWithClock(Limits{MaxAge: time.Hour})
	appendAll(t, m, noteAt("alice", 1, c.now().Add(-2*time.Hour)))

	page, err := m.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(page.Total, 0)
	is.Equal(page.Unread, 0)
	_, err = m.Since(t.Context(), "alice", 0)
	is.True(errors.Is(err, ErrTrimmed)) // lost, so a replay from before it cannot be complete
}

func TestMemoryWhicheverLimitIsReachedFirst(t *testing.T) {
	is := is.New(t)
	m, c := newMemoryWithClock(Limits{MaxPerUser: 3, MaxAge: 10 * time.Minute})
	for seq := range uint64(5) {
		appendAll(t, m, noteAt("alice", seq+1, c.now()))
		c.advance(3 * time.Minute)
	}
	// Count keeps seqs 3..5, stamped 6, 9 and 12 minutes after the start.
	// Now it is 15 minutes after: seq 3 is 9 minutes old, still kept.
	page, err := m.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{5, 4, 3})

	c.advance(2 * time.Minute) // seq 3 is now 11 minutes old
	page, err = m.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{5, 4})
	_, err = m.Since(t.Context(), "alice", 2)
	is.True(errors.Is(err, ErrTrimmed))
	missed, err := m.Since(t.Context(), "alice", 3)
	is.NoErr(err)
	is.Equal(notificationSeqs(missed), []uint64{4, 5})
}

func TestMemoryRepeatedID(t *testing.T) {
	is := is.New(t)
	m := NewMemory(Limits{})
	first := note("alice", 1)
	again := note("alice", 2)
	again.ID = first.ID
	appendAll(t, m, first, note("alice", 3))
	appendAll(t, m, again)

	// The later notification replaces the earlier one.
	page, err := m.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{3, 2})
	is.Equal(page.Unread, 2)
	e, _, err := m.MarkRead(t.Context(), "alice", first.ID, at(0))
	is.NoErr(err)
	is.Equal(e.Seq, uint64(2))
	is.NoErr(m.Delete(t.Context(), "alice", first.ID))
	err = m.Delete(t.Context(), "alice", first.ID)
	is.True(errors.Is(err, ErrNotFound))
	unread, err := m.Unread(t.Context(), "alice")
	is.NoErr(err)
	is.Equal(unread, 1)
}

func TestMemoryAppendOutOfOrderKeepsSeqOrder(t *testing.T) {
	is := is.New(t)
	m := NewMemory(Limits{})
	appendAll(t, m, note("alice", 5), note("alice", 9))
	appendAll(t, m, note("alice", 3), note("alice", 7))

	page, err := m.List(t.Context(), "alice", Query{Limit: 10})
	is.NoErr(err)
	is.Equal(entrySeqs(page.Entries), []uint64{9, 7, 5, 3})
	missed, err := m.Since(t.Context(), "alice", 4)
	is.NoErr(err)
	is.Equal(notificationSeqs(missed), []uint64{5, 7, 9})
	is.NoErr(m.Delete(t.Context(), "alice", idOf(7)))
	is.NoErr(m.Delete(t.Context(), "alice", idOf(3)))
}

func TestMemoryListRejectsNonPositiveLimit(t *testing.T) {
	is := is.New(t)
	m := NewMemory(Limits{})
	appendAll(t, m, note("alice", 1))
	_, err := m.List(t.Context(), "alice", Query{})
	is.True(err != nil)
}

func TestMemoryForgetsEmptiedInbox(t *testing.T) {
	is := is.New(t)
	m := NewMemory(Limits{MaxPerUser: 1})
	appendAll(t, m, note("alice", 1), note("bob", 2), note("bob", 3))
	is.NoErr(m.Delete(t.Context(), "alice", idOf(1)))
	is.NoErr(m.Delete(t.Context(), "bob", idOf(3)))

	// Alice's inbox holds nothing worth keeping; Bob's remembers that
	// retention dropped seq 2.
	_, alice := m.users["alice"]
	is.True(!alice)
	_, err := m.Since(t.Context(), "bob", 0)
	is.True(errors.Is(err, ErrTrimmed))
}
