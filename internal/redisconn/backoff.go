package redisconn

import (
	"context"
	"time"
)

// Backoff spaces the retries of a loop waiting for Redis to come back: Min
// first, then twice the last wait, up to Max, so an outage costs a few
// attempts a second rather than a busy loop, and a blip costs only Min.
// Set Min and Max; the value is ready to use. It is not safe for concurrent
// use: each loop keeps its own.
type Backoff struct {
	Min, Max time.Duration
	last     time.Duration
}

// Next returns how long to wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	b.last = min(max(2*b.last, b.Min), b.Max)
	return b.last
}

// Reset starts again from Min: Redis answered.
func (b *Backoff) Reset() { b.last = 0 }

// Wait waits Next or until ctx ends, and reports whether the whole wait
// passed.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits d or until ctx ends, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
