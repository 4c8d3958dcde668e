package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// RedisTrail is the TrailStore of every instance on one Redis: one stream,
// <prefix>audit:trail, each entry an event's JSON in field "e", trimmed to
// about its capacity at every add (MAXLEN ~). Adding is one pipeline per
// flush; reading one XREVRANGE of at most the capacity.
type RedisTrail struct {
	client   *redis.Client
	key      string
	capacity int
	hooks    redisconn.Hooks
}

var _ TrailStore = (*RedisTrail)(nil)

// RedisTrailOptions configure a RedisTrail.
type RedisTrailOptions struct {
	Prefix redisconn.Prefix
	// Capacity is about how many events are kept; 0 means
	// DefaultTrailCapacity.
	Capacity int
	OnError  func()
}

// NewRedisTrail returns a RedisTrail on client.
func NewRedisTrail(client *redis.Client, opts RedisTrailOptions) *RedisTrail {
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultTrailCapacity
	}
	return &RedisTrail{client: client, key: opts.Prefix.Key("audit", "trail"), capacity: opts.Capacity,
		hooks: redisconn.Hooks{OnError: opts.OnError}}
}

// Add implements TrailStore.
func (r *RedisTrail) Add(ctx context.Context, events []Event) error {
	pipe := r.client.Pipeline()
	for _, e := range events {
		e.ID = ""
		body, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("audit: encode event: %w", err)
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.key, MaxLen: int64(r.capacity), Approx: true, Values: []any{"e", body}})
	}
	_, err := pipe.Exec(ctx)
	return r.hooks.Wrap("audit: add to trail", err)
}

// Latest implements TrailStore. Streams on Redis 6.0 have no exclusive
// ranges: the entry at after is read and left out.
func (r *RedisTrail) Latest(ctx context.Context, after string, f Filter, limit int) ([]Event, error) {
	start := "-"
	if after != "" {
		if !ValidID(after) {
			return nil, ErrBadID
		}
		start = after
	}
	msgs, err := r.client.XRevRangeN(ctx, r.key, "+", start, int64(r.capacity)).Result()
	if err != nil {
		return nil, r.hooks.Wrap("audit: read trail", err)
	}
	var out []Event
	for _, m := range msgs {
		if len(out) == limit {
			break
		}
		if m.ID == after {
			continue
		}
		body, _ := m.Values["e"].(string)
		var e Event
		if json.Unmarshal([]byte(body), &e) != nil {
			continue
		}
		e.ID = m.ID
		if f.Matches(e) {
			out = append(out, e)
		}
	}
	return out, nil
}
