package presence

// Leaves that failed. A Leave that could not reach Redis leaves the
// connection recorded under this instance, which goes on renewing it: the
// connection is gone but its member would stay listed until this instance
// stopped. So the store keeps each such Leave and Run sends it again every
// Heartbeat until Redis answers, reporting a member it removes through
// Events.Removed like a sweep's. A Join of the same connection to the same
// channel drops the pending Leave first: the client subscribed again, and a
// late Leave would remove it.

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"notification-service/store"
)

const (
	// maxPendingLeaves bounds the failed Leaves kept for Run. Past it a
	// failed Leave is logged and dropped: its member stays until this
	// instance stops or lapses (when a Redis outage lapses the instance,
	// other instances sweep all its memberships anyway).
	maxPendingLeaves = 100_000
	// leavesPerBeat bounds the Leaves one heartbeat sends again, and half
	// a Heartbeat the time it spends on them, so a backlog or a slow Redis
	// never delays the heartbeat toward the lapse.
	leavesPerBeat = 1_000
)

// leaveKey is one connection in one channel.
type leaveKey struct{ channel, connID string }

// pendingLeaves are the Leaves Run must send again.
type pendingLeaves struct {
	// mu guards m and is held across the script of a Leave sent again,
	// so a Join of the same connection and channel that starts meanwhile
	// runs after that script, not before it. (A Join that completes
	// between a Leave's failure and keepLeave is not protected: the
	// transport only leaves a channel it no longer subscribes to, or a
	// connection that is closing.)
	mu sync.Mutex
	m  map[leaveKey]struct{}
}

// keepLeave records a Leave that failed with err, when it failed because Redis
// could not be reached (another error is a bug, and sending it again would
// fail again).
func (r *Redis) keepLeave(channel, connID string, err error) {
	if !errors.Is(err, store.ErrUnavailable) {
		return
	}
	r.leaves.mu.Lock()
	defer r.leaves.mu.Unlock()
	if len(r.leaves.m) >= maxPendingLeaves {
		r.logger.LogAttrs(context.Background(), slog.LevelError,
			"presence: too many failed leaves to send again; this member stays listed until the instance stops",
			slog.String("channel", channel), slog.String("connection_id", connID))
		return
	}
	if r.leaves.m == nil {
		r.leaves.m = make(map[leaveKey]struct{})
	}
	r.leaves.m[leaveKey{channel, connID}] = struct{}{}
}

// forgetLeave drops a pending Leave of connID from channel, waiting for one
// being sent again.
func (r *Redis) forgetLeave(channel, connID string) {
	r.leaves.mu.Lock()
	defer r.leaves.mu.Unlock()
	if len(r.leaves.m) > 0 {
		delete(r.leaves.m, leaveKey{channel, connID})
	}
}

// retryLeaves sends the pending Leaves again, at most leavesPerBeat, until
// one fails (Redis is still away: the next heartbeat tries again), and
// reports each member they removed.
func (r *Redis) retryLeaves(ctx context.Context, events Events) {
	ctx, cancel := context.WithTimeout(ctx, r.heartbeat/2)
	defer cancel()
	for range leavesPerBeat {
		if ctx.Err() != nil {
			return // the next heartbeat goes on
		}
		k, user, removed, done := r.retryOneLeave(ctx)
		if done {
			return
		}
		if removed {
			events.removed(k.channel, user)
		}
	}
}

// retryOneLeave sends one pending Leave again and forgets it once Redis
// answered. done is true when none is pending or Redis did not answer.
func (r *Redis) retryOneLeave(ctx context.Context) (k leaveKey, user string, removed, done bool) {
	r.leaves.mu.Lock()
	defer r.leaves.mu.Unlock()
	var found bool
	for k = range r.leaves.m {
		found = true
		break
	}
	if !found {
		return k, "", false, true
	}
	user, removed, err := r.leave(ctx, k.channel, k.connID)
	switch {
	case err == nil:
		delete(r.leaves.m, k)
		return k, user, removed, false
	case ctx.Err() != nil:
		return k, "", false, true // out of time, or Run ends: kept for later (or stop's sweep)
	case errors.Is(err, store.ErrUnavailable):
		r.logger.LogAttrs(ctx, slog.LevelWarn, "presence: a failed leave failed again; retrying at the next heartbeat",
			slog.Int("pending", len(r.leaves.m)), slog.String("error", err.Error()))
		return k, "", false, true
	default: // Redis answered with an error: sending it again would not help
		r.logger.LogAttrs(ctx, slog.LevelError, "presence: a failed leave cannot be sent again",
			slog.String("channel", k.channel), slog.String("connection_id", k.connID), slog.String("error", err.Error()))
		delete(r.leaves.m, k)
		return k, "", false, false
	}
}
