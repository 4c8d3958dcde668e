package idempotency

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

// testStore checks the behaviour every Store shares. newStoreWith returns
// an empty store within limits; most subtests use limits long enough that
// nothing expires while they run, and the lease subtests short ones. The
// TTL of results is checked by each implementation with its own clock.
func testStore(t *testing.T, newStoreWith func(t *testing.T, limits Limits) Store) {
	t.Helper()
	newStore := func(t *testing.T) Store { return newStoreWith(t, Limits{TTL: time.Hour, ClaimLease: time.Minute}) }

	t.Run("fresh key is claimed", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)

		got, err := s.Begin(t.Context(), "k", "fp")
		is.NoErr(err)
		is.True(!got.Done)
		is.Equal(got.Result, nil)
		is.True(got.Token != "")
	})

	t.Run("second begin while running is in progress", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "k", "fp")

		got, err := s.Begin(t.Context(), "k", "fp")
		is.True(errors.Is(err, ErrInProgress))
		is.True(!got.Done)
		var ip *InProgressError
		is.True(errors.As(err, &ip)) // says how long the claim may still hold
		is.True(ip.RetryAfter > 0 && ip.RetryAfter <= time.Minute)
	})

	t.Run("begin after finish returns the result", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		tok := claim(t, s, "k", "fp")
		is.NoErr(s.Finish(t.Context(), "k", tok, []byte(`{"id":"1"}`)))

		for range 2 { // a result is returned as often as it is asked for
			got, err := s.Begin(t.Context(), "k", "fp")
			is.NoErr(err)
			is.True(got.Done)
			is.Equal(string(got.Result), `{"id":"1"}`)
		}
	})

	t.Run("result is copied in and out", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		tok := claim(t, s, "k", "fp")
		given := []byte("first")
		is.NoErr(s.Finish(t.Context(), "k", tok, given))
		copy(given, "XXXXX") // the caller reuses its buffer

		got, err := s.Begin(t.Context(), "k", "fp")
		is.NoErr(err)
		is.Equal(string(got.Result), "first")
		copy(got.Result, "YYYYY") // the caller scribbles on what it got

		got, err = s.Begin(t.Context(), "k", "fp")
		is.NoErr(err)
		is.Equal(string(got.Result), "first")
	})

	t.Run("different fingerprint after finish is a mismatch", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		tok := claim(t, s, "k", "fp")
		is.NoErr(s.Finish(t.Context(), "k", tok, []byte("result")))

		got, err := s.Begin(t.Context(), "k", "other")
		is.True(errors.Is(err, ErrMismatch))
		is.True(!got.Done)
		is.Equal(got.Result, nil) // another request's result is not leaked
	})

	t.Run("different fingerprint while running is a mismatch", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "k", "fp")

		// Retrying cannot fix a reused key, so it is not reported as in
		// progress.
		_, err := s.Begin(t.Context(), "k", "other")
		is.True(errors.Is(err, ErrMismatch))
	})

	t.Run("abort lets the next begin claim", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		tok := claim(t, s, "k", "fp")
		is.NoErr(s.Abort(t.Context(), "k", tok))

		// A retry may carry another fingerprint: nothing was recorded.
		got, err := s.Begin(t.Context(), "k", "other")
		is.NoErr(err)
		is.True(!got.Done)
	})

	t.Run("abort after finish keeps the result", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		tok := claim(t, s, "k", "fp")
		is.NoErr(s.Finish(t.Context(), "k", tok, []byte("result")))
		is.NoErr(s.Abort(t.Context(), "k", tok))

		got, err := s.Begin(t.Context(), "k", "fp")
		is.NoErr(err)
		is.True(got.Done)
		is.Equal(string(got.Result), "result")
	})

	t.Run("abort of an unknown key is harmless", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		is.NoErr(s.Abort(t.Context(), "k", "no-such-token"))
		claim(t, s, "k", "fp")
	})

	t.Run("abort with another token leaves the claim alone", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		tok := claim(t, s, "k", "fp")
		is.NoErr(s.Abort(t.Context(), "k", "not-"+tok))
		_, err := s.Begin(t.Context(), "k", "fp")
		is.True(errors.Is(err, ErrInProgress))
		is.NoErr(s.Finish(t.Context(), "k", tok, []byte("mine")))
	})

	t.Run("finish needs a claim in progress", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		is.True(s.Finish(t.Context(), "never-begun", "tok", []byte("x")) != nil)

		tok := claim(t, s, "aborted", "fp")
		is.NoErr(s.Abort(t.Context(), "aborted", tok))
		is.True(s.Finish(t.Context(), "aborted", tok, []byte("x")) != nil)

		tok = claim(t, s, "finished", "fp")
		is.NoErr(s.Finish(t.Context(), "finished", tok, []byte("first")))
		is.True(s.Finish(t.Context(), "finished", tok, []byte("second")) != nil)
		got, err := s.Begin(t.Context(), "finished", "fp")
		is.NoErr(err)
		is.Equal(string(got.Result), "first")

		tok = claim(t, s, "other-token", "fp")
		is.True(s.Finish(t.Context(), "other-token", "not-"+tok, []byte("x")) != nil)
	})

	t.Run("keys are independent", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		tok := claim(t, s, "a", "fp")
		claim(t, s, "b", "fp")
		is.NoErr(s.Finish(t.Context(), "a", tok, []byte("A")))

		_, err := s.Begin(t.Context(), "b", "fp")
		is.True(errors.Is(err, ErrInProgress))
	})

	t.Run("concurrent begins: exactly one claims", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)

		var claimed, inProgress atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				<-start
				got, err := s.Begin(t.Context(), "k", "fp")
				switch {
				case err == nil && !got.Done:
					claimed.Add(1)
				case errors.Is(err, ErrInProgress):
					inProgress.Add(1)
				default:
					t.Errorf("Begin: done=%v err=%v", got.Done, err)
				}
			})
		}
		close(start)
		wg.Wait()
		is.Equal(claimed.Load(), int32(1))
		is.Equal(inProgress.Load(), int32(49))
	})

	// A claim whose attempt died (its instance killed, or Redis gone
	// before it could finish or abort) lapses after the lease, and the
	// retry takes it over; the dead attempt, should it come back, can
	// neither finish nor abort the new claim.
	t.Run("a lapsed claim is taken over and the old token is void", func(t *testing.T) {
		is := is.New(t)
		// Long enough that the second claim is surely still held after
		// the four calls below on a loaded machine.
		const lease = time.Second
		s := newStoreWith(t, Limits{TTL: time.Hour, ClaimLease: lease})
		first := claim(t, s, "k", "fp")

		second := takeOver(t, s, "k", "fp", lease)
		is.True(second != first)
		is.True(s.Finish(t.Context(), "k", first, []byte("late")) != nil)
		is.NoErr(s.Abort(t.Context(), "k", first)) // harmless
		_, err := s.Begin(t.Context(), "k", "fp")
		is.True(errors.Is(err, ErrInProgress)) // the second attempt still holds it

		is.NoErr(s.Finish(t.Context(), "k", second, []byte("second")))
		got, err := s.Begin(t.Context(), "k", "fp")
		is.NoErr(err)
		is.True(got.Done)
		is.Equal(string(got.Result), "second")
	})

	t.Run("the lease never outlives the TTL", func(t *testing.T) {
		is := is.New(t)
		s := newStoreWith(t, Limits{TTL: 150 * time.Millisecond, ClaimLease: time.Hour})
		claim(t, s, "k", "fp")
		_, err := s.Begin(t.Context(), "k", "fp")
		var ip *InProgressError
		is.True(errors.As(err, &ip))
		is.True(ip.RetryAfter <= 150*time.Millisecond)
		takeOver(t, s, "k", "fp", 150*time.Millisecond)
	})
}

// takeOver retries Begin until the claim on key lapses and the caller
// takes it, and returns the new token. Every refusal on the way must be
// ErrInProgress with a RetryAfter within lease.
func takeOver(t *testing.T, s Store, key, fingerprint string, lease time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(lease + 5*time.Second)
	for {
		got, err := s.Begin(t.Context(), key, fingerprint)
		var ip *InProgressError
		switch {
		case err == nil && !got.Done:
			return got.Token
		case errors.As(err, &ip) && ip.RetryAfter <= lease:
		default:
			t.Fatalf("Begin(%q) while the claim lapses: %+v, %v", key, got, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the claim on %q never lapsed", key)
		}
		time.Sleep(min(ip.RetryAfter, 20*time.Millisecond)) // as a retrying client does
	}
}

// claim begins key and fails the test unless the caller now holds the
// claim, whose token it returns.
func claim(t *testing.T, s Store, key, fingerprint string) string {
	t.Helper()
	got, err := s.Begin(t.Context(), key, fingerprint)
	if err != nil || got.Done || got.Token == "" {
		t.Fatalf("Begin(%q, %q): %+v err=%v, want a fresh claim", key, fingerprint, got, err)
	}
	return got.Token
}
