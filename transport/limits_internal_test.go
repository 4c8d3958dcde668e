package transport

import (
	"strconv"
	"testing"
	"time"

	"github.com/matryer/is"
)

// The limiter maps stay bounded whatever keys arrive, and forget keys
// whose allowance has refilled, with no goroutine of their own.
func TestLimiterSetStaysBounded(t *testing.T) {
	is := is.New(t)
	l := newLimiterSet(Rate{PerSecond: 1, Burst: 2}, 10)
	now := time.Now()
	for i := range 1000 {
		_, ok := l.take(now, "addr-"+strconv.Itoa(i))
		is.True(ok) // every new key starts with its burst
		is.True(l.size() <= 10)
	}
	// Once their buckets refill, the next new key sweeps them all away.
	later := now.Add(time.Hour)
	_, ok := l.take(later, "fresh")
	is.True(ok)
	is.Equal(l.size(), 1)
}

func TestLimiterSetSpendsAllOrNothing(t *testing.T) {
	is := is.New(t)
	l := newLimiterSet(Rate{PerSecond: 1, Burst: 1}, 100)
	now := time.Now()
	_, ok := l.take(now, "a")
	is.True(ok)
	wait, ok := l.take(now, "b", "a")
	is.True(!ok)
	is.True(wait > 0 && wait <= time.Second)
	_, ok = l.take(now, "b") // the refused batch did not spend b's token
	is.True(ok)
	_, ok = l.take(now.Add(time.Second), "a", "b")
	is.True(ok)
}

func TestLimiterSetDisabled(t *testing.T) {
	is := is.New(t)
	l := newLimiterSet(Rate{}, 10)
	for range 100 {
		_, ok := l.take(time.Now(), "a")
		is.True(ok)
	}
	is.Equal(l.size(), 0)
}

func TestRateLimitedRetryAfter(t *testing.T) {
	is := is.New(t)
	is.Equal(rateLimited(time.Millisecond, "x").RetryAfter, 1) // never 0
	is.Equal(rateLimited(time.Second, "x").RetryAfter, 1)
	is.Equal(rateLimited(1500*time.Millisecond, "x").RetryAfter, 2) // rounded up
}

func TestUserSlots(t *testing.T) {
	is := is.New(t)
	u := newUserSlots(2)
	is.True(u.acquire("a"))
	is.True(u.acquire("a"))
	is.True(!u.acquire("a"))
	is.True(u.acquire("b"))
	u.release("a")
	is.True(u.acquire("a"))
	u.release("a")
	u.release("a")
	u.release("b")
	is.Equal(len(u.byUser), 0) // no entry outlives its user's streams
	unbounded := newUserSlots(0)
	for range 100 {
		is.True(unbounded.acquire("a"))
	}
}

// The expiry queue gives connections back in deadline order, and a stream
// that leaves first takes its entry with it.
func TestExpiryQueue(t *testing.T) {
	is := is.New(t)
	q := newExpiryQueue()
	now := time.Now()
	a, b, c := &conn{id: "a"}, &conn{id: "b"}, &conn{id: "c"}
	q.add(b, now.Add(2*time.Second))
	q.add(a, now.Add(time.Second))
	q.add(c, now.Add(3*time.Second))
	select {
	case <-q.wake: // a new earliest deadline wakes Run
	default:
		t.Fatal("no wake-up")
	}
	q.remove(b)
	is.Equal(q.len(), 2)
	due, next := q.popDue(now)
	is.Equal(len(due), 0)
	is.True(next.Equal(now.Add(time.Second)))
	due, next = q.popDue(now.Add(5 * time.Second))
	is.Equal(len(due), 2)
	is.Equal(due[0].id, "a")
	is.Equal(due[1].id, "c")
	is.True(next.IsZero())
	q.remove(a) // already popped: nothing to do
	is.Equal(q.len(), 0)
}
