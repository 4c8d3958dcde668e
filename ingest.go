package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/internal/redisconn"
	"notification-service/laravel"
	"notification-service/metrics"
	"notification-service/publish"
)

// laravelIngester is Laravel's redis broadcaster's way in, when
// LARAVEL_REDIS_PREFIX is set: an ingester subscribed to Laravel's Redis,
// publishing through the one publish path, and the client it owns.
type laravelIngester struct {
	*laravel.Ingester
	client *redis.Client
}

// newLaravelIngester connects to Laravel's Redis (LARAVEL_REDIS_URL, or
// REDIS_URL) and prepares the ingester. In Redis mode instances agree on
// which one publishes through a lease in the service's own Redis (lease);
// nil, in memory mode, means this instance publishes everything.
func newLaravelIngester(cfg config, logger *slog.Logger, lease *redis.Client, publisher *publish.Publisher, m *metrics.Metrics) (*laravelIngester, error) {
	url := cfg.LaravelRedisURL
	if url == "" {
		url = cfg.RedisURL
	}
	opts, err := redisconn.ParseURL(url) // validated by loadConfig
	if err != nil {
		return nil, fmt.Errorf("LARAVEL_REDIS_URL: %w", err)
	}
	client := redisconn.Open(opts)
	ing, err := laravel.NewIngester(laravel.Config{
		Client: client, Prefix: cfg.LaravelRedisPrefix, Mapping: cfg.mapping(),
		Publisher: laravelPublisher{publisher}, Logger: logger.With(slog.String("component", "laravel_redis")),
		Lease: lease, LeasePrefix: cfg.RedisPrefix,
	})
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("laravel redis broadcaster: %w", err)
	}
	m.WatchLaravel(func() metrics.LaravelCounts {
		s := ing.Stats()
		return metrics.LaravelCounts{Received: s.Received, Published: s.Published, Invalid: s.Invalid,
			Failed: s.Failed, Skipped: s.Skipped, Leading: s.Leading}
	})
	return &laravelIngester{Ingester: ing, client: client}, nil
}

// close releases Laravel's Redis once Run has returned.
func (l *laravelIngester) close() { l.client.Close() }

// laravelPublisher is the publish path as the ingester sees it: it adapts
// *publish.Publisher, whose Publish takes a publish.Source and returns what
// was published, to laravel.Publisher.
type laravelPublisher struct{ p *publish.Publisher }

var _ laravel.Publisher = laravelPublisher{}

func (l laravelPublisher) Publish(ctx context.Context, source string, ns []broker.Notification) error {
	_, err := l.p.Publish(ctx, publish.Source(source), ns)
	return err
}
