package idempotency

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/matryer/is"
)

// testStore checks the behaviour every Store shares. newStore returns an
// empty store whose TTL is long enough (minutes or more) that nothing expires
// while a subtest runs; expiry is checked by each implementation with its
// own clock.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()

	t.Run("fresh key is claimed", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)

		result, done, err := s.Begin(t.Context(), "k", "fp")
		is.NoErr(err)
		is.True(!done)
		is.Equal(result, nil)
	})

	t.Run("second begin while running is in progress", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "k", "fp")

		_, done, err := s.Begin(t.Context(), "k", "fp")
		is.True(errors.Is(err, ErrInProgress))
		is.True(!done)
	})

	t.Run("begin after finish returns the result", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "k", "fp")
		is.NoErr(s.Finish(t.Context(), "k", []byte(`{"id":"1"}`)))

		for range 2 { // a result is returned as often as it is asked for
			result, done, err := s.Begin(t.Context(), "k", "fp")
			is.NoErr(err)
			is.True(done)
			is.Equal(string(result), `{"id":"1"}`)
		}
	})

	t.Run("result is copied in and out", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "k", "fp")
		given := []byte("first")
		is.NoErr(s.Finish(t.Context(), "k", given))
		copy(given, "XXXXX") // the caller reuses its buffer

		result, _, err := s.Begin(t.Context(), "k", "fp")
		is.NoErr(err)
		is.Equal(string(result), "first")
		copy(result, "YYYYY") // the caller scribbles on what it got

		result, _, err = s.Begin(t.Context(), "k", "fp")
		is.NoErr(err)
		is.Equal(string(result), "first")
	})

	t.Run("different fingerprint after finish is a mismatch", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "k", "fp")
		is.NoErr(s.Finish(t.Context(), "k", []byte("result")))

		result, done, err := s.Begin(t.Context(), "k", "other")
		is.True(errors.Is(err, ErrMismatch))
		is.True(!done)
		is.Equal(result, nil) // another request's result is not leaked
	})

	t.Run("different fingerprint while running is a mismatch", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "k", "fp")

		// Retrying cannot fix a reused key, so it is not reported as in
		// progress.
		_, _, err := s.Begin(t.Context(), "k", "other")
		is.True(errors.Is(err, ErrMismatch))
	})

	t.Run("abort lets the next begin claim", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "k", "fp")
		is.NoErr(s.Abort(t.Context(), "k"))

		// A retry may carry another fingerprint: nothing was recorded.
		_, done, err := s.Begin(t.Context(), "k", "other")
		is.NoErr(err)
		is.True(!done)
	})

	t.Run("abort after finish keeps the result", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "k", "fp")
		is.NoErr(s.Finish(t.Context(), "k", []byte("result")))
		is.NoErr(s.Abort(t.Context(), "k"))

		result, done, err := s.Begin(t.Context(), "k", "fp")
		is.NoErr(err)
		is.True(done)
		is.Equal(string(result), "result")
	})

	t.Run("abort of an unknown key is harmless", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		is.NoErr(s.Abort(t.Context(), "k"))
		claim(t, s, "k", "fp")
	})

	t.Run("finish needs a claim in progress", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		is.True(s.Finish(t.Context(), "never-begun", []byte("x")) != nil)

		claim(t, s, "aborted", "fp")
		is.NoErr(s.Abort(t.Context(), "aborted"))
		is.True(s.Finish(t.Context(), "aborted", []byte("x")) != nil)

		claim(t, s, "finished", "fp")
		is.NoErr(s.Finish(t.Context(), "finished", []byte("first")))
		is.True(s.Finish(t.Context(), "finished", []byte("second")) != nil)
		result, _, err := s.Begin(t.Context(), "finished", "fp")
		is.NoErr(err)
		is.Equal(string(result), "first")
	})

	t.Run("keys are independent", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t)
		claim(t, s, "a", "fp")
		claim(t, s, "b", "fp")
		is.NoErr(s.Finish(t.Context(), "a", []byte("A")))

		_, _, err := s.Begin(t.Context(), "b", "fp")
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
				_, done, err := s.Begin(t.Context(), "k", "fp")
				switch {
				case err == nil && !done:
					claimed.Add(1)
				case errors.Is(err, ErrInProgress):
					inProgress.Add(1)
				default:
					t.Errorf("Begin: done=%v err=%v", done, err)
				}
			})
		}
		close(start)
		wg.Wait()
		is.Equal(claimed.Load(), int32(1))
		is.Equal(inProgress.Load(), int32(49))
	})
}

// claim begins key and fails the test unless the caller now holds the claim.
func claim(t *testing.T, s Store, key, fingerprint string) {
	t.Helper()
	_, done, err := s.Begin(t.Context(), key, fingerprint)
	if err != nil || done {
		t.Fatalf("Begin(%q, %q): done=%v err=%v, want a fresh claim", key, fingerprint, done, err)
	}
}
