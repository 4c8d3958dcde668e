package transport

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Three views of the service's health, for three audiences:
//
//   - GET /livez: the process serves requests. Nothing else: a liveness
//     probe that failed while Redis is away would restart every instance
//     during a Redis blip and drop the live streams that outlast it.
//   - GET /readyz: this instance can accept sends now: its shared store
//     answers and it is not shutting down. A load balancer or Kubernetes
//     readiness probe routes new work elsewhere while it fails; live
//     streams stay open.
//   - GET /health: the seed's summary (status, mode, connections, uptime),
//     503 "degraded" while the store is away, as before.

func (s *Server) handleLivez() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func (s *Server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string]string{"status": "ready"}
		code := http.StatusOK
		switch {
		case s.shuttingDown():
			code, body["status"], body["reason"] = http.StatusServiceUnavailable, "not_ready", "shutting_down"
		case s.storeDown(r.Context()):
			code, body["status"], body["reason"] = http.StatusServiceUnavailable, "not_ready", "store_unavailable"
		}
		writeJSON(w, code, body)
	})
}

func (s *Server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, code, body := "ok", http.StatusOK, map[string]any{}
		if s.storeDown(r.Context()) {
			// Live streams stay open, but sends and schedules would be
			// refused: a load balancer should route new work elsewhere.
			status, code = "degraded", http.StatusServiceUnavailable
			body["error"] = "redis unavailable"
		}
		body["status"] = status
		body["mode"] = s.opts.Mode
		body["connections"] = s.streams.hub.Len()
		body["uptime_seconds"] = int(time.Since(s.started).Seconds())
		writeJSON(w, code, body)
	})
}

// storeDown says whether the shared store fails its check (never in memory
// mode).
func (s *Server) storeDown(ctx context.Context) bool {
	if s.check == nil {
		return false
	}
	if err := s.check(ctx); err != nil {
		s.logger.Warn("health: store unavailable", slog.Any("error", err))
		return true
	}
	return false
}

// shuttingDown says whether the server has begun ending its streams.
func (s *Server) shuttingDown() bool {
	select {
	case <-s.streams.shuttingDown:
		return true
	default:
		return false
	}
}
