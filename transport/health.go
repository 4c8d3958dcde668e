package transport

import (
	"log/slog"
	"net/http"
	"time"
)

func (s *Server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, code, body := "ok", http.StatusOK, map[string]any{}
		if s.check != nil {
			if err := s.check(r.Context()); err != nil {
				// Live streams stay open, but sends and schedules would be
				// refused: a load balancer should route new work elsewhere.
				status, code = "degraded", http.StatusServiceUnavailable
				body["error"] = "redis unavailable"
				s.logger.Warn("health: degraded", slog.Any("error", err))
			}
		}
		body["status"] = status
		body["mode"] = s.opts.Mode
		body["connections"] = s.streams.hub.Len()
		body["uptime_seconds"] = int(time.Since(s.started).Seconds())
		writeJSON(w, code, body)
	})
}
