package idempotency

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ClaimTimeout is how long a claim may stay in progress before Begin treats
// it as abandoned and lets the next request with the key claim it again.
//
// A claim normally ends in Finish or Abort within the time of one send (an
// inbox append and a publish: milliseconds, seconds at worst). It does not
// end when the request dies on the way: an instance that crashes or loses
// Redis, or a handler that panics before Abort. Holding such a claim for the
// whole TTL (a day by default) would answer every retry of that send with
// ErrInProgress until then, so a retrying backend could never get it
// through. A minute is far longer than any send takes and short enough for a
// queue worker's retry backoff. A claim never outlives the TTL itself.
const ClaimTimeout = time.Minute

// errNotClaimed is why Finish fails: it is a bug in the caller or a claim
// that ran past ClaimTimeout, nothing a caller branches on.
var errNotClaimed = errors.New("idempotency: no request with this key is in progress")

// minSweep is the map size below which Memory does not bother sweeping:
// a few dozen expired records cost less than walking them over and over.
const minSweep = 64

// Memory is the Store of a single instance, keeping keys in a map.
//
// Expired records are dropped lazily: Begin treats them as absent, and once
// the map has grown to twice its size after the previous sweep, Begin sweeps
// them all. Each sweep walks the map once and the map must double before the
// next, so sweeping costs O(1) per Begin, amortised, and the map holds at most
// about twice the keys that were live at the last sweep, without a
// background goroutine.
type Memory struct {
	ttl          time.Duration
	claimTimeout time.Duration
	now          func() time.Time // time.Now; tests replace it

	mu        sync.Mutex
	records   map[string]record
	nextSweep int // len(records) at which Begin sweeps
}

type record struct {
	fingerprint string
	result      []byte // owned by the store: copied in and out
	done        bool
	expires     time.Time // exclusive: the record is gone from this instant
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store that remembers a finished request for
// ttl; a ttl of zero or less means DefaultTTL. A claim in progress is
// abandoned after ClaimTimeout, or after ttl if that is shorter.
func NewMemory(ttl time.Duration) *Memory {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Memory{
		ttl:          ttl,
		claimTimeout: min(ClaimTimeout, ttl),
		now:          time.Now,
		records:      make(map[string]record),
		nextSweep:    minSweep,
	}
}

// Begin implements Store. A key reused for a different request is
// ErrMismatch even while the first request is still running: that is a bug
// in the caller which retrying cannot fix, whereas ErrInProgress invites a
// retry.
func (m *Memory) Begin(_ context.Context, key, fingerprint string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	now := m.now()
	if r, ok := m.live(key, now); ok {
		switch {
		case r.fingerprint != fingerprint:
			return nil, false, fmt.Errorf("begin %q: %w", key, ErrMismatch)
		case !r.done:
			return nil, false, fmt.Errorf("begin %q: %w", key, ErrInProgress)
		default:
			return bytes.Clone(r.result), true, nil
		}
	}

	if len(m.records) >= m.nextSweep {
		m.sweep(now)
	}
	m.records[key] = record{fingerprint: fingerprint, expires: now.Add(m.claimTimeout)}
	return nil, false, nil
}

// Finish implements Store. It fails if key has no claim in progress: the
// claim was never taken, was already finished or aborted, or ran past
// ClaimTimeout (it may have been claimed again since, so the result is not
// recorded over it).
func (m *Memory) Finish(_ context.Context, key string, result []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	now := m.now()
	r, ok := m.live(key, now)
	if !ok || r.done {
		return fmt.Errorf("finish %q: %w", key, errNotClaimed)
	}
	r.result = bytes.Clone(result)
	r.done = true
	r.expires = now.Add(m.ttl) // the TTL counts from the result, not the claim
	m.records[key] = r
	return nil
}

// Abort implements Store. It only drops a claim in progress: a finished
// result stays, so a late or repeated Abort cannot make the request run
// twice.
func (m *Memory) Abort(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	if r, ok := m.live(key, m.now()); ok && !r.done {
		delete(m.records, key)
	}
	return nil
}

// live returns the record for key unless it is absent or expired.
// The caller holds m.mu.
func (m *Memory) live(key string, now time.Time) (record, bool) {
	r, ok := m.records[key]
	if !ok || !now.Before(r.expires) {
		return record{}, false
	}
	return r, true
}

// sweep drops every expired record. It copies the live ones into a new map
// rather than deleting in place, because a Go map keeps the memory of its
// largest size: after a burst of keys, the old map would stay that big.
// The caller holds m.mu.
func (m *Memory) sweep(now time.Time) {
	live := make(map[string]record, len(m.records)/2)
	for k, r := range m.records {
		if now.Before(r.expires) {
			live[k] = r
		}
	}
	m.records = live
	m.nextSweep = max(2*len(live), minSweep)
}
