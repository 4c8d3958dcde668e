package idempotency

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestMemory(t *testing.T) {
	testStore(t, func(t *testing.T, limits Limits) Store { return NewMemory(limits) })
}

// clock is a fake time for one test goroutine.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestMemory(ttl time.Duration) (*Memory, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(Limits{TTL: ttl})
	m.now = c.now
	return m, c
}

func TestMemoryFinishedKeyExpiresAfterTTL(t *testing.T) {
	is := is.New(t)
	m, c := newTestMemory(time.Hour)
	tok := claim(t, m, "k", "fp")
	c.advance(DefaultClaimLease / 2)
	is.NoErr(m.Finish(t.Context(), "k", tok, []byte("result")))

	// The TTL counts from Finish, not from Begin.
	c.advance(time.Hour - time.Nanosecond)
	got, err := m.Begin(t.Context(), "k", "fp")
	is.NoErr(err)
	is.True(got.Done)
	is.Equal(string(got.Result), "result")

	c.advance(time.Nanosecond)
	got, err = m.Begin(t.Context(), "k", "other") // forgotten, so no mismatch
	is.NoErr(err)
	is.True(!got.Done)
}

func TestMemoryStuckClaimLapsesAfterTheLease(t *testing.T) {
	is := is.New(t)
	m, c := newTestMemory(time.Hour)
	claim(t, m, "k", "fp") // never finished nor aborted: its request died

	c.advance(DefaultClaimLease - time.Nanosecond)
	_, err := m.Begin(t.Context(), "k", "fp")
	var ip *InProgressError
	is.True(errors.As(err, &ip))
	is.Equal(ip.RetryAfter, time.Nanosecond) // exactly what is left

	c.advance(time.Nanosecond)
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
			tok := claim(t, m, key, "fp")
			is.NoErr(m.Finish(t.Context(), key, tok, []byte("r")))
		}
		c.advance(time.Hour)
	}
	is.True(len(m.records) <= 2*perRound)

	// Live keys survive a sweep.
	tok := claim(t, m, "live", "fp")
	is.NoErr(m.Finish(t.Context(), "live", tok, []byte("kept")))
	for i := range 4 * perRound {
		claim(t, m, fmt.Sprint("fill-", i), "fp")
	}
	got, err := m.Begin(t.Context(), "live", "fp")
	is.NoErr(err)
	is.True(got.Done)
	is.Equal(string(got.Result), "kept")
}

func TestNewMemoryDefaults(t *testing.T) {
	is := is.New(t)
	is.Equal(NewMemory(Limits{}).limits, Limits{TTL: DefaultTTL, ClaimLease: DefaultClaimLease})
	is.Equal(NewMemory(Limits{TTL: time.Second, ClaimLease: time.Minute}).limits, Limits{TTL: time.Second, ClaimLease: time.Second})
}
