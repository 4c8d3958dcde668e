package main

import (
	"net/http"
	"testing"

	"github.com/matryer/is"

	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
)

// TestProbesDuringARedisOutage: while Redis is away the process is alive
// (/livez 200, so an orchestrator does not restart it and drop its live
// streams), not ready for sends (/readyz 503, so a load balancer routes
// them elsewhere), and /health says degraded as the seed shows; when Redis
// is back it is ready again.
func TestProbesDuringARedisOutage(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	svc := startCluster(t, srv, 1)[0]
	sse := svc.openSSE(t, query("user_id", "ines"))
	sse.Ready(t)

	probe := func(path string) (int, map[string]any) { return svc.do(t, http.MethodGet, path, nil) }
	status, body := probe("/livez")
	is.Equal(status, http.StatusOK)
	is.Equal(body["status"], "ok")
	status, body = probe("/readyz")
	is.Equal(status, http.StatusOK)
	is.Equal(body["status"], "ready")

	srv.Stop()
	streamtest.Eventually(t, "not ready", func() bool { status, _ := probe("/readyz"); return status == http.StatusServiceUnavailable })
	status, body = probe("/readyz")
	is.Equal(body["reason"], "store_unavailable")
	status, _ = probe("/livez")
	is.Equal(status, http.StatusOK)
	status, body = probe("/health")
	is.Equal(status, http.StatusServiceUnavailable)
	is.Equal(body["status"], "degraded")
	is.Equal(body["connections"], float64(1)) // the stream outlives the outage

	srv.Restart()
	streamtest.Eventually(t, "ready again", func() bool { status, _ := probe("/readyz"); return status == http.StatusOK })
}
