package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/idempotency"
	"notification-service/inbox"
	"notification-service/internal/redisconn"
	"notification-service/metrics"
	"notification-service/presence"
	"notification-service/schedule"
)

// backend is where the service keeps its state: in this process (memory
// mode), or in Redis shared by every instance (REDIS_URL).
type backend struct {
	mode      string
	bus       broker.Bus
	inbox     inbox.Store
	scheduler schedule.Scheduler
	idem      idempotency.Store
	presence  presence.Store
	// pending counts the scheduled items waiting, for the metrics.
	pending func(context.Context) (int, error)
	// check reports whether the shared store is reachable; nil in memory
	// mode.
	check func(context.Context) error
	// run reads the shared feed until ctx ends; nil in memory mode.
	run   func(ctx context.Context) error
	close func()
	// client is the shared Redis; nil in memory mode.
	client *redis.Client
}

func newBackend(ctx context.Context, cfg config, logger *slog.Logger, hub *broker.Hub, m *metrics.Metrics, delivered broker.DeliveryFunc) (backend, error) {
	inboxLimits := inbox.Limits{MaxPerUser: cfg.InboxMaxPerUser, MaxAge: cfg.InboxMaxAge}
	historyLimits := broker.HistoryLimits{MaxPerChannel: cfg.HistoryMaxPerChannel, MaxAge: cfg.HistoryMaxAge}
	if cfg.RedisURL == "" {
		store := inbox.NewMemory(inboxLimits)
		scheduler := schedule.NewMemory(logger, cfg.scheduleLimits())
		return backend{
			mode:      "memory",
			bus:       broker.NewMemory(hub, store, historyLimits, delivered),
			inbox:     store,
			scheduler: scheduler,
			idem:      idempotency.NewMemory(cfg.idempotencyLimits()),
			presence:  presence.NewMemory(cfg.PresenceMaxMembers),
			pending:   scheduler.Pending,
			close:     func() {},
		}, nil
	}

	opts, err := redisconn.ParseURL(cfg.RedisURL) // validated by loadConfig
	if err != nil {
		return backend{}, fmt.Errorf("REDIS_URL: %w", err)
	}
	// go-redis logs through one process-wide logger; main owns the process.
	redis.SetLogger(redisconn.ClientLog{Logger: logger})
	client := redisconn.Open(opts)
	if err := reachRedis(ctx, client); err != nil {
		client.Close()
		return backend{}, fmt.Errorf("REDIS_URL: cannot reach Redis at %s: %w", opts.Addr, err)
	}
	if err := redisconn.RequireVersion(ctx, client); errors.Is(err, redisconn.ErrVersionUnknown) {
		logger.Warn("cannot read the Redis version; going on as if it were recent enough",
			slog.String("needs", "Redis "+redisconn.MinVersion+" or later"), slog.Any("error", err))
	} else if err != nil {
		client.Close()
		return backend{}, fmt.Errorf("REDIS_URL: %w", err)
	}
	warnAboutEviction(ctx, client, logger)
	prefix := redisconn.Prefix(cfg.RedisPrefix)
	store := inbox.NewRedis(client, prefix, inboxLimits)
	bus := broker.NewRedis(client, hub, store, broker.RedisOptions{
		Prefix: prefix, History: historyLimits, Delivered: delivered, Logger: logger,
		OnError: m.RedisError("bus"), OnReconnect: m.RedisReconnect("bus"),
	})
	scheduler := schedule.NewRedis(client, schedule.RedisOptions{
		Prefix: prefix, Limits: cfg.scheduleLimits(), Logger: logger,
		OnError: m.RedisError("scheduler"), OnReconnect: m.RedisReconnect("scheduler"),
	})
	// Scheduled items fire on Redis's expiry events: without them an item
	// would wait for the scheduler's overdue sweep (about a second late),
	// so refuse to start and say what to set rather than run degraded.
	if err := scheduler.Prepare(ctx); err != nil {
		client.Close()
		return backend{}, err
	}
	return backend{
		mode:      "redis",
		bus:       bus,
		inbox:     store,
		scheduler: scheduler,
		idem:      idempotency.NewRedis(client, prefix, cfg.idempotencyLimits()),
		presence: presence.NewRedis(client, presence.RedisOptions{
			Prefix: prefix, MaxMembers: cfg.PresenceMaxMembers, Logger: logger,
			Heartbeat: cfg.PresenceHeartbeat, Lapse: cfg.PresenceLapse,
		}),
		pending: scheduler.Pending,
		check:   bus.Check,
		run:     bus.Run,
		close:   func() { client.Close() },
		client:  client,
	}, nil
}

// reachRedis waits a few seconds for Redis to answer: at start-up it may be
// coming up beside the service (docker compose).
func reachRedis(ctx context.Context, client *redis.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := client.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// warnAboutEviction says at start-up when Redis may evict keys the service
// cannot lose (an inbox, the sequence number, a pending schedule). Managed
// Redis often refuses CONFIG; then there is nothing to read, and the README
// says what to set.
func warnAboutEviction(ctx context.Context, client *redis.Client, logger *slog.Logger) {
	policy, err := client.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return
	}
	if p := policy["maxmemory-policy"]; strings.HasPrefix(p, "allkeys-") {
		logger.Warn("Redis may evict the service's keys: set maxmemory-policy noeviction, so a full Redis refuses sends (503) instead of losing notifications",
			slog.String("maxmemory-policy", p))
	}
}
