// Package idempotency remembers the result of a request made with an
// Idempotency-Key, so a backend that retries a send gets the first answer
// back instead of notifying twice. It stores opaque result bytes; what a
// result means is the HTTP layer's business.
package idempotency

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrInProgress means another request with the same key has begun and
	// not finished yet.
	ErrInProgress = errors.New("idempotency: a request with this key is in progress")
	// ErrMismatch means the key was used before for a different request.
	ErrMismatch = errors.New("idempotency: key reused for a different request")
)

// Store keeps keys for a fixed time (the TTL given to its constructor).
// Implementations are safe for concurrent use and share contract_test.go.
type Store interface {
	// Begin claims key for a request whose content hashes to fingerprint.
	// If a request with that key already finished, it returns that
	// request's result and done=true (ErrMismatch if the fingerprint
	// differs). If one is still running it returns ErrInProgress.
	// Otherwise the caller now holds the claim and must call Finish or
	// Abort.
	Begin(ctx context.Context, key, fingerprint string) (result []byte, done bool, err error)
	// Finish records the result of the claimed request for the TTL.
	Finish(ctx context.Context, key string, result []byte) error
	// Abort drops the claim, so a retry runs the request again; used when
	// the request failed and changed nothing.
	Abort(ctx context.Context, key string) error
}

// DefaultTTL is how long a key is remembered unless configured otherwise.
const DefaultTTL = 24 * time.Hour
