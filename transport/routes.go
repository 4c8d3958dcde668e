package transport

import "net/http"

// Handler returns every route of the service, wrapped in its middleware.
// Each route names who may call it: backend (the API key, when one is
// set; /metrics too, since what it shows is operational detail),
// ownInbox (in token mode, the API key or the token of the user in
// the path); the streams check their token themselves, since they must
// answer before the stream starts. Routes a browser calls from a page's
// origin are registered through browser, which adds CORS and answers their
// preflight; the backend's routes have neither.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	browser := s.browserRoutes(mux)
	mux.Handle("POST /api/v1/notifications/send", s.backend(s.handleSend()))
	mux.Handle("POST /api/v1/notifications/schedule", s.backend(s.handleSchedule()))
	// Pusher's HTTP API: each request is signed with the app secret, which
	// the handler checks against the body it signs.
	mux.Handle("POST /apps/{app_id}/events", s.handlePusherEvents())
	mux.Handle("POST /apps/{app_id}/batch_events", s.handlePusherBatchEvents())
	mux.Handle("GET /api/v1/schedules", s.backend(s.handleListSchedules()))
	mux.Handle("GET /api/v1/schedules/{id}", s.backend(s.handleGetSchedule()))
	mux.Handle("DELETE /api/v1/schedules/{id}", s.backend(s.handleCancelSchedule()))
	browser("GET /api/v1/notifications/user/{user_id}", s.ownInbox(s.handleListInbox()))
	browser("PUT /api/v1/notifications/{user_id}/read-all", s.ownInbox(s.handleReadAll()))
	browser("PUT /api/v1/notifications/{user_id}/{notification_id}/read", s.ownInbox(s.handleMarkRead()))
	browser("DELETE /api/v1/notifications/{user_id}/{notification_id}", s.ownInbox(s.handleDelete()))
	browser("POST /api/v1/connections/{connection_id}/subscribe", s.connectionOwner(s.handleConnectionChannels(s.subscribing())))
	browser("POST /api/v1/connections/{connection_id}/unsubscribe", s.connectionOwner(s.handleConnectionChannels(s.unsubscribing())))
	browser("GET /health", s.handleHealth())
	mux.Handle("GET /livez", s.handleLivez())
	mux.Handle("GET /readyz", s.handleReadyz())
	mux.Handle("GET /metrics", s.backend(s.handleMetrics()))
	// The dashboard's API and the analytics (dashboard.go, analytics.go):
	// the backend's, and the dashboard page's on the same origin (no CORS).
	mux.Handle("GET /api/v1/analytics", s.backend(s.handleAnalytics()))
	mux.Handle("GET /api/v1/dashboard/stats", s.backend(s.handleDashboardStats()))
	mux.Handle("GET /api/v1/dashboard/audit", s.backend(s.handleDashboardAudit()))
	mux.Handle("GET /api/v1/dashboard/audit/stream", s.backend(s.handleDashboardAuditStream()))
	browser("GET /sse", s.handleSSE())
	mux.Handle("GET /ws", s.handleWS()) // checks the origin itself: no CORS for WebSockets
	// Laravel Echo (pusher-js): the app key in the path; private and
	// presence channels are authorized by Laravel's signatures.
	mux.Handle("GET /app/{key}", s.handlePusher())
	// The browser client and its demo page (static.go). A module script is
	// fetched with CORS: pages of other origins import the client.
	if s.assets != nil {
		browser("GET /client.js", s.handleAsset("clients/js/client.js", "text/javascript; charset=utf-8"))
		browser("GET /client.d.ts", s.handleAsset("clients/js/client.d.ts", "application/typescript; charset=utf-8"))
		mux.Handle("GET /{$}", s.handleAsset("web/index.html", "text/html; charset=utf-8")) // exactly /
		// The dashboard page asks for the API key itself: the page is
		// open, what it shows is not.
		mux.Handle("GET /dashboard", dashboardPage(s.handleAsset("web/dashboard.html", "text/html; charset=utf-8")))
		mux.Handle("GET /dashboard.js", dashboardPage(s.handleAsset("web/dashboard.js", "text/javascript; charset=utf-8")))
		mux.Handle("GET /dashboard.css", dashboardPage(s.handleAsset("web/dashboard.css", "text/css; charset=utf-8")))
		// The API's OpenAPI description (docs/openapi.yaml), for tools and
		// documentation viewers, which may run on another origin.
		browser("GET /openapi.yaml", s.handleOpenAPI())
	}
	return s.recoverPanics(jsonMuxErrors(mux))
}
