package main

import (
	"net/http"
	"testing"

	"github.com/matryer/is"

	"notification-service/internal/metricstest"
	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
)

func (s *service) scrape(t *testing.T) metricstest.Samples {
	t.Helper()
	return metricstest.Scrape(t, s.client, s.url+"/metrics")
}

// TestMetricsInRedisMode: deliveries through the Redis feed carry their
// publish time, and a Redis that goes away and comes back shows in the
// error and reconnect counters of the bus and the scheduler.
func TestMetricsInRedisMode(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	svc := startService(t, "REDIS_URL", srv.Addr(), "REDIS_PREFIX", "metrics:")

	sse := svc.openSSE(t, query("user_id", "ana"))
	sse.Ready(t)
	status, sent := svc.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"title": "hi", "user_id": "ana"})
	is.Equal(status, http.StatusCreated)
	sse.NextNotification(t, sent["id"].(string))
	var s metricstest.Samples
	streamtest.Eventually(t, "the SSE delivery counted", func() bool {
		s = svc.scrape(t)
		return s.Value(`notification_service_deliveries_total{transport="sse"}`) == 1
	})
	is.Equal(s.Value(`notification_service_delivery_latency_seconds_count`), 1.0) // the feed carried the publish time
	is.Equal(s.Value(`notification_service_scheduled_pending`), 0.0)              // read from Redis
	is.Equal(s.Value(`notification_service_queued_frames`), 0.0)
	for _, name := range []string{"notification_service_build_info", "go_build_info", "go_goroutines", "process_cpu_seconds_total"} {
		is.True(s.Has(name)) // wired by serve
	}
	busErrors := s.Value(`notification_service_redis_errors_total{component="bus"}`)
	schedErrors := s.Value(`notification_service_redis_errors_total{component="scheduler"}`)
	is.Equal(s.Value(`notification_service_redis_reconnects_total{component="bus"}`), 0.0)
	is.Equal(s.Value(`notification_service_redis_reconnects_total{component="scheduler"}`), 0.0)

	srv.Stop()
	streamtest.Eventually(t, "the bus and the scheduler to count their Redis errors", func() bool {
		s = svc.scrape(t)
		return s.Value(`notification_service_redis_errors_total{component="bus"}`) > busErrors &&
			s.Value(`notification_service_redis_errors_total{component="scheduler"}`) > schedErrors
	})
	// The pending count cannot be read: left out, the rest still served.
	is.True(!s.Has("notification_service_scheduled_pending"))
	is.Equal(s.Value(`notification_service_connections{transport="sse"}`), 1.0) // streams stay open

	srv.Restart()
	streamtest.Eventually(t, "the bus and the scheduler to count their reconnects", func() bool {
		s = svc.scrape(t)
		return s.Value(`notification_service_redis_reconnects_total{component="bus"}`) >= 1 &&
			s.Value(`notification_service_redis_reconnects_total{component="scheduler"}`) >= 1
	})
	is.Equal(s.Value(`notification_service_scheduled_pending`), 0.0)
}
