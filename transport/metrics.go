package transport

import (
	"net/http"
	"time"

	"notification-service/broker"
)

// Metrics is what the transport reports to the service's metrics
// (metrics.Metrics implements it). A nil Deps.Metrics reports to nobody,
// and GET /metrics then answers 404.
//
// The calls sit at a few clear points of a stream's life: ConnectionOpened
// once it is registered in the hub, FramesWritten after every successful
// write of frames to its socket (catch-up and live), FrameDropped where the
// hub finds its queue full, ConnectionClosed once it has left the hub.
type Metrics interface {
	ConnectionOpened(transport string)
	ConnectionClosed(transport, reason string)
	FrameDropped()
	// FramesWritten is on the delivery path: it must be cheap.
	FramesWritten(transport string, frames []*broker.Frame)
	// NotificationAccepted counts a send ("send") or a schedule
	// ("schedule") the API accepted.
	NotificationAccepted(kind string)
	ScheduleFired(lateness time.Duration)
	// Handler serves the metrics to a scraper.
	Handler() http.Handler
}

// noMetrics is the Metrics of a server given none.
type noMetrics struct{}

func (noMetrics) ConnectionOpened(string)               {}
func (noMetrics) ConnectionClosed(string, string)       {}
func (noMetrics) FrameDropped()                         {}
func (noMetrics) FramesWritten(string, []*broker.Frame) {}
func (noMetrics) NotificationAccepted(string)           {}
func (noMetrics) ScheduleFired(time.Duration)           {}
func (noMetrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "metrics are not enabled on this server"})
	})
}

// handleMetrics serves GET /metrics.
func (s *Server) handleMetrics() http.Handler { return s.metrics.Handler() }
