package transport

import "net/http"

// Handler returns every route of the service, wrapped in its middleware.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/notifications/send", s.handleSend())
	mux.Handle("POST /api/v1/notifications/schedule", s.handleSchedule())
	mux.Handle("GET /api/v1/schedules", s.handleListSchedules())
	mux.Handle("GET /api/v1/schedules/{id}", s.handleGetSchedule())
	mux.Handle("DELETE /api/v1/schedules/{id}", s.handleCancelSchedule())
	mux.Handle("GET /api/v1/notifications/user/{user_id}", s.handleListInbox())
	mux.Handle("PUT /api/v1/notifications/{user_id}/read-all", s.handleReadAll())
	mux.Handle("PUT /api/v1/notifications/{user_id}/{notification_id}/read", s.handleMarkRead())
	mux.Handle("DELETE /api/v1/notifications/{user_id}/{notification_id}", s.handleDelete())
	mux.Handle("POST /api/v1/connections/{connection_id}/subscribe", s.handleConnectionChannels(true))
	mux.Handle("POST /api/v1/connections/{connection_id}/unsubscribe", s.handleConnectionChannels(false))
	mux.Handle("GET /health", s.handleHealth())
	mux.Handle("GET /sse", s.handleSSE())
	mux.Handle("GET /ws", s.handleWS())
	return s.recoverPanics(s.cors(jsonMuxErrors(mux)))
}
