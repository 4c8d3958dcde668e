package streamtest

import (
	"testing"
	"time"
)

// WaitTimeout bounds every wait for an event; tests never sleep to hope.
const WaitTimeout = 5 * time.Second

// pollInterval is how often Eventually looks again: often enough to add
// little to a test, seldom enough that a condition doing a request or a
// Redis round trip does not load a machine the tests share.
const pollInterval = 10 * time.Millisecond

// Eventually polls cond until it holds, failing the test with what after
// WaitTimeout. It is for state that announces nothing (a connection
// registering in the hub, a counter moving, Redis coming back); anything a
// client can read as an event is waited for on its stream instead.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, WaitTimeout, what, cond)
}

// EventuallyWithin is Eventually bounded by within instead of WaitTimeout,
// for a package whose states take longer to reach by design (a lease to
// run out, a backlog to catch up) and which says why at its bound.
func EventuallyWithin(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(pollInterval)
	}
}
