// Package idempotency remembers the result of a request made with an
// Idempotency-Key, so a backend that retries a send gets the first answer
// back instead of notifying twice. It stores opaque result bytes; what a
// result means is the HTTP layer's business.
//
// A request claims its key for a short lease (Limits.ClaimLease), then
// finishes it with its result or aborts it. A claim left behind by an
// attempt that died on the way (an instance killed, Redis gone between the
// claim and the answer) lapses with its lease, and the next retry claims
// the key again: it must be safe to run the request a second time, which
// the service makes sure of by deriving the notification's id from the key
// (the bus publishes an id once, the scheduler adds an id once). Claims
// carry a token, so the late Finish or Abort of an attempt whose lease ran
// out never touches the claim of the attempt that took over.
package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrInProgress means another request with the same key holds a claim
	// that has not lapsed. Begin returns it as an *InProgressError, which
	// says when the claim lapses.
	ErrInProgress = errors.New("idempotency: a request with this key is in progress")
	// ErrMismatch means the key was used before for a different request.
	ErrMismatch = errors.New("idempotency: key reused for a different request")
)

// InProgressError is ErrInProgress with the time left on the claim: a
// retry after RetryAfter either finds the result or claims the key itself.
type InProgressError struct {
	Key        string
	RetryAfter time.Duration
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("idempotency: key %q is in progress for up to %s", e.Key, e.RetryAfter)
}

// Is makes errors.Is(err, ErrInProgress) hold.
func (e *InProgressError) Is(target error) bool { return target == ErrInProgress }

// Claim is what Begin found or took for a key.
type Claim struct {
	// Done says the request already finished; Result is its result.
	Done   bool
	Result []byte
	// Token identifies the claim taken (when Done is false): Finish and
	// Abort act only on the claim whose token they are given.
	Token string
}

// Store keeps keys for a fixed time. Implementations are safe for
// concurrent use and share contract_test.go.
type Store interface {
	// Begin claims key for a request whose content hashes to fingerprint.
	// If a request with that key already finished, it returns that
	// request's result (Done). If the key was used for another
	// fingerprint it returns ErrMismatch; if a claim on it has not lapsed,
	// an *InProgressError. Otherwise the caller holds the claim for the
	// lease and must call Finish or Abort with its Token. An error
	// wrapping store.ErrUnavailable means the store could not be reached.
	Begin(ctx context.Context, key, fingerprint string) (Claim, error)
	// Finish records the result of the claim for the TTL. It fails if
	// the claim is no longer held (it lapsed, maybe to another attempt).
	Finish(ctx context.Context, key, token string, result []byte) error
	// Abort drops the claim, so a retry runs the request again; used when
	// the request failed and changed nothing. Anything but that claim in
	// progress (a result, another attempt's claim) is left alone.
	Abort(ctx context.Context, key, token string) error
}

// Limits bound how long keys are kept.
type Limits struct {
	// TTL is how long a finished request's result is remembered (from its
	// Finish); zero or less means DefaultTTL.
	TTL time.Duration
	// ClaimLease is how long a claim holds the key before a retry may
	// take it over; zero or less means DefaultClaimLease. It never
	// exceeds TTL.
	ClaimLease time.Duration
}

const (
	// DefaultTTL is how long a result is remembered unless configured
	// otherwise.
	DefaultTTL = 24 * time.Hour
	// DefaultClaimLease is how long a claim holds its key unless
	// configured otherwise. A send takes milliseconds; one slowed down by
	// a struggling Redis is bounded by the client's timeouts (a few
	// seconds) and, should it still be running when its lease lapses, the
	// attempt that takes over publishes the same derived id, which the
	// bus does not publish twice. Short enough that a backend retrying an
	// interrupted send gets through within seconds.
	DefaultClaimLease = 5 * time.Second
)

// withDefaults fills zero limits.
func (l Limits) withDefaults() Limits {
	if l.TTL <= 0 {
		l.TTL = DefaultTTL
	}
	if l.ClaimLease <= 0 {
		l.ClaimLease = DefaultClaimLease
	}
	l.ClaimLease = min(l.ClaimLease, l.TTL)
	return l
}

// errNotClaimed is why Finish fails: the claim lapsed (and may have been
// taken since), or the caller never held it. Nothing a caller branches on.
var errNotClaimed = errors.New("idempotency: this claim is no longer held")

// newToken returns a claim token no other attempt will hold.
func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
