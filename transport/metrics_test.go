package transport_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/metricstest"
	"notification-service/internal/streamtest"
)

// newMeteredServer is newTestServer with the service's metrics wired as
// main wires them.
func newMeteredServer(t *testing.T, tweaks ...func(*testConfig)) *testServer {
	t.Helper()
	return newTestServer(t, append([]func(*testConfig){func(c *testConfig) { c.Metrics = true }}, tweaks...)...)
}

func (ts *testServer) scrape(t *testing.T, headers ...string) metricstest.Samples {
	t.Helper()
	return metricstest.Scrape(t, ts.Client(), ts.URL+"/metrics", headers...)
}

// scrapeUntil scrapes until cond holds: a counter moves just after the
// write a client has already read.
func (ts *testServer) scrapeUntil(t *testing.T, what string, cond func(metricstest.Samples) bool) metricstest.Samples {
	t.Helper()
	var s metricstest.Samples
	streamtest.Eventually(t, what, func() bool {
		s = ts.scrape(t)
		return cond(s)
	})
	return s
}

func TestMetricsAfterStreamsSendAndSchedule(t *testing.T) {
	is := is.New(t)
	ts := newMeteredServer(t)
	q := query("user_id", "ana", "channels", "news")
	sse := ts.dialSSE(t, q)
	start := sse.Ready(t)["cursor"].(string)
	ws := ts.dialWS(t, q)
	ws.Ready(t)

	s := ts.scrape(t)
	is.Equal(s.Value(`notification_service_connections{transport="sse"}`), 1.0)
	is.Equal(s.Value(`notification_service_connections{transport="ws"}`), 1.0)
	is.Equal(s.Value(`notification_service_deliveries_total{transport="sse"}`), 0.0) // ready is no delivery
	is.Equal(s.Value(`notification_service_scheduled_pending`), 0.0)

	sent := ts.send(t, map[string]any{"title": "now", "user_id": "ana"})
	sse.NextNotification(t, sent)
	ws.NextNotification(t, sent)

	at := time.Now().Add(50 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	status, resp, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/schedule",
		map[string]any{"title": "later", "channels": []string{"news"}, "scheduled_at": at})
	is.Equal(status, http.StatusCreated)
	sse.NextNotification(t, resp["id"].(string))
	is.Equal(ws.NextEvent(t, "notification")["id"], resp["id"])

	// Fire counts its fire after publishing, so the deliveries can be
	// written before it does: wait for both.
	s = ts.scrapeUntil(t, "four deliveries and the fire", func(s metricstest.Samples) bool {
		return s.Sum("notification_service_deliveries_total") == 4 && s.Value(`notification_service_scheduled_fired_total`) == 1
	})
	is.Equal(s.Value(`notification_service_connections{transport="sse"}`), 1.0)
	is.Equal(s.Value(`notification_service_connections{transport="ws"}`), 1.0)
	is.Equal(s.Value(`notification_service_deliveries_total{transport="sse"}`), 2.0)
	is.Equal(s.Value(`notification_service_deliveries_total{transport="ws"}`), 2.0)
	is.Equal(s.Value(`notification_service_notifications_accepted_total{kind="send"}`), 1.0)
	is.Equal(s.Value(`notification_service_notifications_accepted_total{kind="schedule"}`), 1.0)
	is.Equal(s.Sum("notification_service_notifications_accepted_total"), 2.0)
	is.Equal(s.Value(`notification_service_scheduled_fired_total`), 1.0)
	is.Equal(s.Value(`notification_service_schedule_lateness_seconds_count`), 1.0)
	is.Equal(s.Value(`notification_service_scheduled_pending`), 0.0)
	is.Equal(s.Value(`notification_service_delivery_latency_seconds_count`), 4.0) // every live delivery
	is.True(s.Value(`notification_service_delivery_latency_seconds_sum`) > 0)
	is.Equal(s.Value(`notification_service_queued_frames`), 0.0)
	is.Equal(s.Value(`notification_service_frames_dropped_total`), 0.0)
	is.True(s.Has("notification_service_build_info"))
	is.True(s.Has("go_build_info"))
	is.True(s.Has("go_goroutines"))

	// A replay is a delivery but not a latency: it was published long ago.
	resumed := ts.dialSSE(t, q+"&"+query("last_event_id", start))
	resumed.Ready(t)
	resumed.Next(t)
	resumed.Next(t)
	s = ts.scrapeUntil(t, "the replay counted", func(s metricstest.Samples) bool {
		return s.Value(`notification_service_deliveries_total{transport="sse"}`) == 4
	})
	is.Equal(s.Value(`notification_service_delivery_latency_seconds_count`), 4.0)
	is.Equal(s.Value(`notification_service_connections{transport="sse"}`), 2.0)

	// Leaving is counted by reason.
	ws.Close()
	// A scrape gathers each metric on its own, not as one snapshot: wait
	// for both sides of the disconnect.
	s = ts.scrapeUntil(t, "the WebSocket gone", func(s metricstest.Samples) bool {
		return s.Value(`notification_service_connections{transport="ws"}`) == 0 &&
			s.Has(`notification_service_disconnects_total{reason="client_closed",transport="ws"}`)
	})
	is.Equal(s.Value(`notification_service_disconnects_total{reason="client_closed",transport="ws"}`), 1.0)
}

// TestMetricsScheduledPending: a pending item shows at scrape time.
func TestMetricsScheduledPending(t *testing.T) {
	is := is.New(t)
	ts := newMeteredServer(t)
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	status, _, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/schedule",
		map[string]any{"title": "later", "user_id": "ana", "scheduled_at": at})
	is.Equal(status, http.StatusCreated)
	is.Equal(ts.scrape(t).Value(`notification_service_scheduled_pending`), 1.0)
}

// TestMetricsSlowConsumer: the frame a full queue refuses is counted, and
// the close says why.
func TestMetricsSlowConsumer(t *testing.T) {
	is := is.New(t)
	ts := newMeteredServer(t, slowPeers(2))
	ts.dialSSENoRead(t, query("user_id", "ana"))
	streamtest.Eventually(t, "the connection registered", func() bool { return ts.Hub.Len() == 1 })
	blob := strings.Repeat("x", 32<<10)
	for i := 0; ts.Hub.Len() == 1; i++ {
		if i == 4000 {
			t.Fatal("the slow consumer was never closed")
		}
		ts.send(t, map[string]any{"title": fmt.Sprint(i), "user_id": "ana", "data": map[string]any{"blob": blob}})
	}
	// A scrape gathers each metric on its own, not as one snapshot: wait
	// for both sides of the disconnect.
	s := ts.scrapeUntil(t, "the slow consumer's close", func(s metricstest.Samples) bool {
		return s.Value(`notification_service_connections{transport="sse"}`) == 0 &&
			s.Has(`notification_service_disconnects_total{reason="slow_consumer",transport="sse"}`)
	})
	is.Equal(s.Value(`notification_service_disconnects_total{reason="slow_consumer",transport="sse"}`), 1.0)
	is.True(s.Value(`notification_service_frames_dropped_total`) >= 1)
}

// TestMetricsNeedTheAPIKey: with an API key configured, /metrics is a
// backend endpoint like any other.
func TestMetricsNeedTheAPIKey(t *testing.T) {
	is := is.New(t)
	const key = "metrics-test-key-0123456789"
	ts := newMeteredServer(t, func(o *testConfig) { o.APIKey = key })
	status, body, _ := ts.do(t, http.MethodGet, "/metrics", nil)
	is.Equal(status, http.StatusUnauthorized)
	is.Equal(body["error"].(map[string]any)["code"], "api_key_missing")
	status, _, _ = ts.do(t, http.MethodGet, "/metrics", nil, "Authorization", "Bearer wrong-key-0123456789")
	is.Equal(status, http.StatusUnauthorized)
	s := ts.scrape(t, "Authorization", "Bearer "+key)
	is.True(s.Has("notification_service_connections"))
	s = ts.scrape(t, "X-API-Key", key)
	is.True(s.Has("notification_service_connections"))
}

// TestMetricsOff: a server given no metrics answers /metrics 404, in the
// API's error shape.
func TestMetricsOff(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	status, body, _ := ts.do(t, http.MethodGet, "/metrics", nil)
	is.Equal(status, http.StatusNotFound)
	is.Equal(body["error"].(map[string]any)["code"], "not_found")
}
