package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

const (
	// defaultSweepBatch bounds the connections one sweep script removes,
	// so a dead instance with many connections never holds Redis for
	// long; Run calls it again until nothing is left.
	defaultSweepBatch = 500
	// stopTimeout bounds the removal of this instance's memberships once
	// Run's context has ended.
	stopTimeout = 5 * time.Second
)

// Run implements Store: every Heartbeat it renews this instance's deadline,
// sends again the Leaves that could not reach Redis (redis_leaves.go) and
// sweeps the instances whose deadline passed, reporting the members
// removed. When ctx ends it marks this instance dead (deadline 0) and sweeps
// once more, so its own memberships go and their members are reported,
// here or, for those another instance's sweep reaches first, there.
func (r *Redis) Run(ctx context.Context, events Events) error {
	ticker := time.NewTicker(r.heartbeat)
	defer ticker.Stop()
	for {
		r.told = r.beat(ctx, events, r.told)
		select {
		case <-ctx.Done():
			return r.stop(context.WithoutCancel(ctx), events)
		case <-ticker.C:
		}
	}
}

// beat is one heartbeat: renew, send failed Leaves again, sweep, and tell the caller of a lapse once
// the sweep has reported what the lapse removed. seen is the generation the
// caller last knew of; beat returns the one it knows of now.
func (r *Redis) beat(ctx context.Context, events Events, seen *generation) *generation {
	g := r.gen.Load()
	alive, err := r.renew(ctx, g)
	switch {
	case err != nil:
		r.logger.LogAttrs(ctx, slog.LevelError, "presence: heartbeat failed",
			slog.String("instance", g.id), slog.String("error", err.Error()))
	case !alive:
		r.replace(g)
		// The new id joins the instances set now rather than at its first
		// Join: a lapse is followed by Joins anyway.
		if _, err := r.renew(ctx, r.gen.Load()); err != nil {
			r.logger.LogAttrs(ctx, slog.LevelError, "presence: heartbeat failed",
				slog.String("instance", r.gen.Load().id), slog.String("error", err.Error()))
		}
	}
	if err == nil { // Redis answered: worth sending the failed Leaves again
		r.retryLeaves(ctx, events)
	}
	if err := r.sweep(ctx, events); err != nil {
		r.logger.LogAttrs(ctx, slog.LevelError, "presence: sweep failed", slog.String("error", err.Error()))
		return seen // tell of a lapse once its removals are reported
	}
	if now := r.gen.Load(); now != seen {
		events.lapsed()
		return now
	}
	return seen
}

// renew runs heartbeat.lua for g and says whether g is alive.
func (r *Redis) renew(ctx context.Context, g *generation) (bool, error) {
	n, err := heartbeatScript.Run(ctx, r.client, nil, string(r.prefix), g.id, millis(r.lapse), g.mayBeNew()).Int()
	if err != nil {
		return false, redisconn.Wrap("presence: heartbeat of "+g.id, err)
	}
	if n == 1 {
		g.known.Store(true)
	}
	return n == 1, nil
}

// sweep removes the connections of dead instances, a batch per script,
// until none is left, reporting each member removed.
func (r *Redis) sweep(ctx context.Context, events Events) error {
	for {
		reply, err := sweepScript.Run(ctx, r.client, nil, string(r.prefix), r.sweepBatch).Slice()
		if err != nil {
			return redisconn.Wrap("presence: sweep", err)
		}
		if len(reply) > 1 {
			r.logger.LogAttrs(ctx, slog.LevelInfo, "presence: removed the members of dead instances",
				slog.Int("members", (len(reply)-1)/2))
		}
		for k := 1; k+1 < len(reply); k += 2 {
			channel, _ := reply[k].(string)
			user, _ := reply[k+1].(string)
			events.removed(channel, user)
		}
		if more, _ := reply[0].(int64); more == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// stop marks this instance dead and sweeps, within stopTimeout. A Join
// racing it finds the id dead and records under a new one, which nobody
// renews: other instances sweep it within Lapse + Heartbeat.
func (r *Redis) stop(ctx context.Context, events Events) error {
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	g := r.gen.Load()
	err := r.client.ZAddXX(ctx, r.instancesKey(), redis.Z{Score: 0, Member: g.id}).Err()
	if err != nil {
		return redisconn.Wrap(fmt.Sprintf("presence: stop instance %s", g.id), err)
	}
	if err := r.sweep(ctx, events); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("presence: stop instance %s: not done within %s: %w", g.id, stopTimeout, err)
		}
		return err
	}
	return nil
}
