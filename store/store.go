// Package store names what every stateful component shares about the store
// that holds its state: the inbox, the broker's bus, the scheduler and the
// idempotency store each keep their data either in this process or in a
// store shared by every instance (Redis), and a shared store can be
// unreachable for a while. This package owns the one error that says so,
// so callers (the HTTP layer answering 503) branch on it without knowing
// which store, or which client library, is behind a component.
//
// It owns no storage and no connection: reaching Redis is
// internal/redisconn's business, and each component owns its own keys.
package store

import "errors"

// ErrUnavailable means the shared store could not be reached or could not
// serve (refused, reset, timed out, loading, out of memory, a failover in
// progress): nothing was done, and the same request may succeed later, so
// the caller retries. Components wrap it with the operation that failed;
// callers branch on it with errors.Is.
//
// The one exception is documented where it applies: a Redis bus whose
// publish ran but whose answer was lost also returns it (see broker.Bus).
var ErrUnavailable = errors.New("store unavailable")
