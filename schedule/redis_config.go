package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// Expiry events: the Redis scheduler fires on Redis's expired-key events,
// so it makes sure Redis publishes them (notify-keyspace-events "Ex"), or
// refuses to start saying what the operator must set.

// ErrExpiryEventsOff means Redis does not publish the expired-key events the
// Redis scheduler runs on, and the service could not turn them on.
var ErrExpiryEventsOff = errors.New("schedule: Redis does not publish expired-key events")

// expiryEventsHelp tells the operator what to change.
const expiryEventsHelp = `notify-keyspace-events must include "Ex" (keyevent notifications for expired keys), ` +
	`added to whatever flags are already set: run CONFIG SET notify-keyspace-events Ex, ` +
	`or set it in redis.conf or your provider's parameter group`

// errConfigRefused means Redis answered CONFIG with an error (renamed,
// forbidden by ACL, a managed service): the setting cannot be read or
// changed from here.
var errConfigRefused = errors.New("CONFIG refused")

// Prepare readies Redis for the scheduler, once at start-up. It makes sure
// Redis publishes expired-key events, adding "Ex" to notify-keyspace-events
// and keeping the flags already set; where CONFIG is not available (a
// managed Redis), it checks with a probe key that the events arrive. It
// returns ErrExpiryEventsOff, with what the operator must set, when they do
// not; an error wrapping store.ErrUnavailable when Redis cannot be reached.
// It also indexes for listing the items an older version stored
// (redis_list.go).
func (r *Redis) Prepare(ctx context.Context) error {
	if err := r.prepareExpiryEvents(ctx); err != nil {
		return err
	}
	return r.reindex(ctx)
}

// prepareExpiryEvents is Prepare's check of the expiry events.
func (r *Redis) prepareExpiryEvents(ctx context.Context) error {
	err := r.ensureExpiryEvents(ctx)
	if err == nil || !errors.Is(err, errConfigRefused) {
		return err
	}
	on, perr := r.probeExpiryEvents(ctx)
	if perr != nil {
		return perr
	}
	if !on {
		return fmt.Errorf("%w: %s (%v)", ErrExpiryEventsOff, expiryEventsHelp, err)
	}
	r.logger.LogAttrs(ctx, slog.LevelInfo, "schedule: Redis publishes expired-key events (checked with a probe key; CONFIG is not available)",
		slog.String("config_error", err.Error()))
	return nil
}

// ensureExpiryEvents adds "Ex" to notify-keyspace-events when it lacks
// them. It returns an error wrapping errConfigRefused when Redis refuses
// CONFIG.
func (r *Redis) ensureExpiryEvents(ctx context.Context) error {
	const param = "notify-keyspace-events"
	got, err := r.client.ConfigGet(ctx, param).Result()
	if err != nil {
		if redisconn.Unavailable(err) {
			return r.hooks.Wrap("schedule: CONFIG GET "+param, err)
		}
		return fmt.Errorf("schedule: CONFIG GET %s: %w: %w", param, errConfigRefused, err)
	}
	cur := got[param]
	want := withExpiryEvents(cur)
	if want == cur {
		return nil
	}
	if err := r.client.ConfigSet(ctx, param, want).Err(); err != nil {
		if redisconn.Unavailable(err) {
			return r.hooks.Wrap("schedule: CONFIG SET "+param, err)
		}
		return fmt.Errorf("schedule: CONFIG SET %s %s: %w: %w", param, want, errConfigRefused, err)
	}
	r.logger.LogAttrs(ctx, slog.LevelInfo, "schedule: turned on expired-key events in Redis",
		slog.String(param, want), slog.String("was", cur))
	return nil
}

// withExpiryEvents returns flags with keyevent notifications ('E') for
// expired keys ('x', which 'A' includes) added, the others kept.
func withExpiryEvents(flags string) string {
	if !strings.Contains(flags, "E") {
		flags += "E"
	}
	if !strings.ContainsAny(flags, "xA") {
		flags += "x"
	}
	return flags
}

// probeExpiryEvents expires a key of its own and reports whether the
// expired event reaches a subscriber.
func (r *Redis) probeExpiryEvents(ctx context.Context) (bool, error) {
	const op = "schedule: probe expired-key events"
	ps := r.client.Subscribe(ctx, r.expiredChannel)
	defer ps.Close()
	// Wait for the subscription to be confirmed, so the probe's event
	// cannot be published before anyone listens.
	if _, err := ps.ReceiveTimeout(ctx, 2*time.Second); err != nil {
		return false, r.hooks.Wrap(op, err)
	}
	key := r.prefix.Key("sched", "probe", redisconn.RandomHex(8))
	if err := r.client.Set(ctx, key, "1", time.Millisecond).Err(); err != nil {
		return false, r.hooks.Wrap(op, err)
	}
	// Touch the key until Redis has expired it (1 ms from now), which
	// publishes the event if events are on.
	touch := time.NewTicker(time.Millisecond)
	defer touch.Stop()
	for {
		n, err := r.client.Exists(ctx, key).Result()
		if err != nil {
			return false, r.hooks.Wrap(op, err)
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-touch.C:
		}
	}
	deadline := time.Now().Add(time.Second)
	for {
		msg, err := ps.ReceiveTimeout(ctx, time.Until(deadline))
		if err != nil {
			if time.Now().After(deadline) {
				return false, nil
			}
			return false, r.hooks.Wrap(op, err)
		}
		if m, ok := msg.(*redis.Message); ok && m.Payload == key {
			return true, nil
		}
	}
}
