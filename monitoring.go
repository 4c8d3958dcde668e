package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"notification-service/analytics"
	"notification-service/audit"
	"notification-service/instances"
	"notification-service/internal/redisconn"
	"notification-service/internal/version"
	"notification-service/metrics"
	"notification-service/transport"
)

// monitoring is what the dashboard and the analytics run on, in this
// process (memory mode) or shared through Redis: the analytics' store and
// this instance's recorder, the live audit trail, and this instance's
// place in the list of instances. Each part runs one goroutine, owned by
// run and stopped with the other components.
type monitoring struct {
	deps     transport.Monitoring
	recorder *analytics.Recorder
	trail    *audit.Trail
	self     *instances.Self
}

func newMonitoring(cfg config, back backend, m *metrics.Metrics, logger *slog.Logger) monitoring {
	limits := analytics.Limits{Retention: cfg.AnalyticsRetention, MaxTypes: cfg.AnalyticsMaxTypes}
	var (
		store     analytics.Store
		trail     audit.TrailStore
		registry  instances.Registry
		redisInfo func(context.Context) any
	)
	if back.client == nil {
		store = analytics.NewMemory(limits)
		trail = audit.NewMemoryTrail(audit.DefaultTrailCapacity)
		registry = instances.NewMemory(cfg.InstanceLapse)
	} else {
		prefix := redisconn.Prefix(cfg.RedisPrefix)
		onError := m.RedisError("monitoring")
		store = analytics.NewRedis(back.client, analytics.RedisOptions{Prefix: prefix, Limits: limits, OnError: onError})
		trail = audit.NewRedisTrail(back.client, audit.RedisTrailOptions{Prefix: prefix, OnError: onError})
		registry = instances.NewRedis(back.client, instances.RedisOptions{Prefix: prefix, Lapse: cfg.InstanceLapse, OnError: onError})
		redisInfo = func(ctx context.Context) any { return redisconn.ReadStatus(ctx, back.client) }
	}
	id := redisconn.RandomHex(4)
	logger = logger.With(slog.String("component", "monitoring"))
	sample := audit.NewTrail(trail, audit.TrailOptions{Instance: id, Logger: logger})
	recorder := analytics.NewRecorder(store, analytics.RecorderOptions{Logger: logger})
	return monitoring{
		deps: transport.Monitoring{
			Analytics: store, RetentionDays: int(limits.Retention / (24 * time.Hour)),
			Instances: registry, Self: id, Trail: trail, Redis: redisInfo, Reads: recorder,
		},
		recorder: recorder,
		trail:    sample,
		self: instances.NewSelf(registry, instances.SelfOptions{
			ID: id, Version: version.Current().Version, Started: time.Now().UTC(), Heartbeat: cfg.InstanceHeartbeat,
			Sample:  func() instances.Sample { return instances.Sample(m.Snapshot()) },
			Actions: func() map[string]instances.Activity { return activity(sample.Counts(time.Now())) },
			Logger:  logger,
		}),
	}
}

func activity(counts map[string]audit.Count) map[string]instances.Activity {
	out := make(map[string]instances.Activity, len(counts))
	for action, c := range counts {
		out[action] = instances.Activity(c)
	}
	return out
}

// run starts the monitoring's goroutines in wg; they stop when ctx ends,
// after a last flush.
func (mo monitoring) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() { _ = mo.recorder.Run(ctx) })
	wg.Go(func() { _ = mo.trail.Run(ctx) })
	wg.Go(func() { _ = mo.self.Run(ctx) })
}
