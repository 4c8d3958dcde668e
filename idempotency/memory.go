package idempotency

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"
)

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
	limits Limits
	now    func() time.Time // time.Now; tests replace it

	mu        sync.Mutex
	records   map[string]record
	nextSweep int // len(records) at which Begin sweeps
}

type record struct {
	fingerprint string
	token       string // the claim's, while not done
	result      []byte // owned by the store: copied in and out
	done        bool
	expires     time.Time // exclusive: the record is gone from this instant
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store keeping keys within limits.
func NewMemory(limits Limits) *Memory {
	return &Memory{
		limits:    limits.withDefaults(),
		now:       time.Now,
		records:   make(map[string]record),
		nextSweep: minSweep,
	}
}

// Begin implements Store. A key reused for a different request is
// ErrMismatch even while the first request is still running: that is a bug
// in the caller which retrying cannot fix, whereas ErrInProgress invites a
// retry.
func (m *Memory) Begin(_ context.Context, key, fingerprint string) (Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	now := m.now()
	if r, ok := m.live(key, now); ok {
		switch {
		case r.fingerprint != fingerprint:
			return Claim{}, fmt.Errorf("begin %q: %w", key, ErrMismatch)
		case !r.done:
			return Claim{}, &InProgressError{Key: key, RetryAfter: r.expires.Sub(now)}
		default:
			return Claim{Done: true, Result: bytes.Clone(r.result)}, nil
		}
	}

	if len(m.records) >= m.nextSweep {
		m.sweep(now)
	}
	token := newToken()
	m.records[key] = record{fingerprint: fingerprint, token: token, expires: now.Add(m.limits.ClaimLease)}
	return Claim{Token: token}, nil
}

// Finish implements Store.
func (m *Memory) Finish(_ context.Context, key, token string, result []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	now := m.now()
	r, ok := m.live(key, now)
	if !ok || r.done || r.token != token {
		return fmt.Errorf("finish %q: %w", key, errNotClaimed)
	}
	r.result = bytes.Clone(result)
	r.done = true
	r.token = ""
	r.expires = now.Add(m.limits.TTL) // the TTL counts from the result, not the claim
	m.records[key] = r
	return nil
}

// Abort implements Store.
func (m *Memory) Abort(_ context.Context, key, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	if r, ok := m.live(key, m.now()); ok && !r.done && r.token == token {
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
