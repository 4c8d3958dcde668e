package metrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/internal/metricstest"
	"notification-service/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) metricstest.Samples {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return metricstest.Scrape(t, srv.Client(), srv.URL)
}

func TestMetricsServeWhatWasRecorded(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	m.WatchQueues(func() (int, int) { return 7, 4 })
	m.WatchScheduled(func(context.Context) (int, error) { return 3, nil })

	m.ConnectionOpened("sse")
	m.ConnectionOpened("ws")
	m.ConnectionOpened("ws")
	m.ConnectionClosed("ws", "slow_consumer")
	m.FrameDropped()
	m.FrameDropped()
	live := &broker.Frame{Seq: 2, Published: time.Now().Add(-3 * time.Millisecond)}
	m.FramesWritten("sse", []*broker.Frame{
		broker.EventFrame("ready", nil), // control: neither a delivery nor a latency
		{Seq: 1},                        // replayed: a delivery, no latency
		live,
	})
	m.FramesWritten("ws", []*broker.Frame{broker.EventFrame("pong", nil)})
	m.NotificationAccepted("send")
	m.NotificationAccepted("send")
	m.NotificationAccepted("schedule")
	m.ScheduleFired(5 * time.Millisecond)
	m.RedisError("bus")()
	m.RedisError("bus")()
	m.RedisReconnect("scheduler")()

	s := scrape(t, m)
	is.Equal(s.Value(`notification_service_connections{transport="sse"}`), 1.0)
	is.Equal(s.Value(`notification_service_connections{transport="ws"}`), 1.0)
	is.Equal(s.Value(`notification_service_disconnects_total{reason="slow_consumer",transport="ws"}`), 1.0)
	is.Equal(s.Value(`notification_service_frames_dropped_total`), 2.0)
	is.Equal(s.Value(`notification_service_deliveries_total{transport="sse"}`), 2.0)
	_, wsDeliveries := s.Get(`notification_service_deliveries_total{transport="ws"}`)
	is.True(wsDeliveries) // present at zero: a pong is no delivery
	is.Equal(s.Value(`notification_service_deliveries_total{transport="ws"}`), 0.0)
	is.Equal(s.Value(`notification_service_delivery_latency_seconds_count`), 1.0)
	is.True(s.Value(`notification_service_delivery_latency_seconds_sum`) >= 0.003)
	is.Equal(s.Value(`notification_service_delivery_latency_seconds_bucket{le="0.001"}`), 0.0)
	is.Equal(s.Value(`notification_service_delivery_latency_seconds_bucket{le="+Inf"}`), 1.0)
	is.Equal(s.Value(`notification_service_notifications_accepted_total{kind="send"}`), 2.0)
	is.Equal(s.Value(`notification_service_notifications_accepted_total{kind="schedule"}`), 1.0)
	is.Equal(s.Value(`notification_service_scheduled_fired_total`), 1.0)
	is.Equal(s.Value(`notification_service_schedule_lateness_seconds_count`), 1.0)
	is.Equal(s.Value(`notification_service_schedule_lateness_seconds_bucket{le="0.0025"}`), 0.0)
	is.Equal(s.Value(`notification_service_schedule_lateness_seconds_bucket{le="0.005"}`), 1.0)
	is.Equal(s.Value(`notification_service_scheduled_pending`), 3.0)
	is.Equal(s.Value(`notification_service_queued_frames`), 7.0)
	is.Equal(s.Value(`notification_service_queued_frames_max`), 4.0)
	is.Equal(s.Value(`notification_service_redis_errors_total{component="bus"}`), 2.0)
	is.Equal(s.Value(`notification_service_redis_errors_total{component="scheduler"}`), 0.0)
	is.Equal(s.Value(`notification_service_redis_reconnects_total{component="scheduler"}`), 1.0)

	// The build, the runtime and the process.
	is.True(s.Has("notification_service_build_info"))
	is.True(s.Has("go_build_info"))
	is.True(s.Has("go_goroutines"))
	is.True(s.Has("process_cpu_seconds_total"))
	for series, v := range s {
		if strings.HasPrefix(series, "notification_service_build_info{") {
			is.Equal(v, 1.0)
			is.True(strings.Contains(series, `go_version="go`))
		}
	}
}

func TestAStoreThatFailsLeavesItsSeriesOut(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	m.WatchScheduled(func(context.Context) (int, error) { return 0, errors.New("redis away") })
	s := scrape(t, m) // still 200
	is.True(!s.Has("notification_service_scheduled_pending"))
	is.True(s.Has("notification_service_connections"))
}

// BenchmarkFramesWritten is the per-delivery cost: what a connection's
// writer adds to each successful write. "1_live" is a write of one live
// notification (a counter add, a clock read, a histogram observation);
// "64_live" is a full batch, reported per frame as well.
func BenchmarkFramesWritten(b *testing.B) {
	m := metrics.New()
	published := time.Now()
	for _, size := range []int{1, 64} {
		frames := make([]*broker.Frame, size)
		for i := range frames {
			frames[i] = &broker.Frame{Seq: uint64(i + 1), Published: published}
		}
		name := map[int]string{1: "1_live", 64: "64_live"}[size]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				m.FramesWritten("sse", frames)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/frame")
		})
		b.Run(name+"_parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.FramesWritten("ws", frames)
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/frame")
		})
	}
}

// BenchmarkConnectionLifecycle is the cost of a connection's open and
// close (a gauge up and down, a labelled counter looked up by reason).
func BenchmarkConnectionLifecycle(b *testing.B) {
	m := metrics.New()
	for b.Loop() {
		m.ConnectionOpened("ws")
		m.ConnectionClosed("ws", "client_closed")
	}
}
