package idempotency

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestMemory(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return NewMemory(time.Hour) })
}

// clock is a fake time for one test goroutine.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestMemory(ttl time.Duration) (*Memory, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(ttl)
	m.now = c.now
	return m, c
}

func TestMemoryFinishedKeyExpiresAfterTTL(t *testing.T) {
	is := is.New(t)
	m, c := newTestMemory(time.Hour)
	claim(t, m, "k", "fp")
	c.advance(30 * time.Second)
	is.NoErr(m.Finish(t.Context(), "k", []byte("result")))

	// The TTL counts from Finish, not from Begin.
	c.advance(time.Hour - time.Nanosecond)
	result, done, err := m.Begin(t.Context(), "k", "fp")
	is.NoErr(err)
	is.True(done)
	is.Equal(string(result), "result")

	c.advance(time.Nanosecond)
	_, done, err = m.Begin(t.Context(), "k", "other") // forgotten, so no mismatch
	is.NoErr(err)
	is.True(!done)
}

func TestMemoryStuckClaimExpires(t *testing.T) {
	is := is.New(t)
	m, c := newTestMemory(time.Hour)
	claim(t, m, "k", "fp") // never finished nor aborted: its request died

	c.advance(ClaimTimeout - time.Nanosecond)
	_, _, err := m.Begin(t.Context(), "k", "fp")
	is.True(errors.Is(err, ErrInProgress))

	c.advance(time.Nanosecond)
	claim(t, m, "k", "fp")
}

func TestMemoryClaimNeverOutlivesTTL(t *testing.T) {
	is := is.New(t)
	ttl := ClaimTimeout / 4
	m, c := newTestMemory(ttl)
	claim(t, m, "k", "fp")

	c.advance(ttl - time.Nanosecond)
	_, _, err := m.Begin(t.Context(), "k", "fp")
	is.True(errors.Is(err, ErrInProgress))

	c.advance(time.Nanosecond)
	claim(t, m, "k", "fp")
}

func TestMemoryFinishAfterClaimExpired(t *testing.T) {
	is := is.New(t)
	m, c := newTestMemory(time.Hour)
	claim(t, m, "k", "fp")
	c.advance(ClaimTimeout)

	// The key may have been claimed again meanwhile: a late result must not
	// land on that claim.
	is.True(m.Finish(t.Context(), "k", []byte("late")) != nil)
	claim(t, m, "k", "fp")
}

func TestMemorySweepBoundsTheMap(t *testing.T) {
	is := is.New(t)
	m, c := newTestMemory(time.Hour)

	// Many rounds of keys that each expire before the next round: the map
	// must not keep them all.
	const perRound = 1000
	for round := range 20 {
		for i := range perRound {
			key := fmt.Sprintf("%d-%d", round, i)
			claim(t, m, key, "fp")
			is.NoErr(m.Finish(t.Context(), key, []byte("r")))
		}
		c.advance(time.Hour)
	}
	is.True(len(m.records) <= 2*perRound)

	// Live keys survive a sweep.
	claim(t, m, "live", "fp")
	is.NoErr(m.Finish(t.Context(), "live", []byte("kept")))
	for i := range 4 * perRound {
		claim(t, m, fmt.Sprint("fill-", i), "fp")
	}
	result, done, err := m.Begin(t.Context(), "live", "fp")
	is.NoErr(err)
	is.True(done)
	is.Equal(string(result), "kept")
}

func TestNewMemoryDefaultTTL(t *testing.T) {
	is := is.New(t)
	m := NewMemory(0)
	is.Equal(m.ttl, DefaultTTL)
	is.Equal(m.claimTimeout, ClaimTimeout)
}
