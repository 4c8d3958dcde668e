package inbox

import (
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestMemory(t *testing.T) {
	testStore(t, func(t *testing.T, limits Limits) Store { return NewMemory(limits) })
}

func TestMemoryAgeRetention(t *testing.T) {
	testAgeRetention(t, func(t *testing.T, limits Limits) (Store, *clock) {
		c := newClock()
		m := NewMemory(limits)
		m.now = c.now
		return m, c
	}, time.Nanosecond)
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
