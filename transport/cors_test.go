package transport_test

import (
	"net/http"
	"testing"

	"github.com/matryer/is"
)

// TestCORSOnlyWhereABrowserNeedsIt: the streams, the inbox, a connection's
// own subscribe and /health answer pages of other origins; the backend's
// endpoints (send, schedule, schedules, /metrics) do not, and their
// preflight fails, so a page cannot even send the request. A refused
// preflight is audited as denied.
func TestCORSOnlyWhereABrowserNeedsIt(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(c *testConfig) { c.AllowedOrigins = []string{"https://app.example"} })
	preflight := func(method, path, origin string) (int, http.Header) {
		status, _, hdr := ts.do(t, http.MethodOptions, path, nil, "Origin", origin, "Access-Control-Request-Method", method)
		return status, hdr
	}
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/sse"},
		{http.MethodGet, "/api/v1/notifications/user/alice"},
		{http.MethodPut, "/api/v1/notifications/alice/read-all"},
		{http.MethodPut, "/api/v1/notifications/alice/n1/read"},
		{http.MethodDelete, "/api/v1/notifications/alice/n1"},
		{http.MethodPost, "/api/v1/connections/c1/subscribe"},
		{http.MethodPost, "/api/v1/connections/c1/unsubscribe"},
		{http.MethodGet, "/health"},
	} {
		status, hdr := preflight(r.method, r.path, "https://app.example")
		is.Equal(status, http.StatusNoContent)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "https://app.example")
	}
	for _, r := range []struct{ method, path string }{
		{http.MethodPost, "/api/v1/notifications/send"},
		{http.MethodPost, "/api/v1/notifications/schedule"},
		{http.MethodGet, "/api/v1/schedules"},
		{http.MethodDelete, "/api/v1/schedules/s1"},
		{http.MethodGet, "/metrics"},
		{http.MethodGet, "/readyz"},
	} {
		status, hdr := preflight(r.method, r.path, "https://app.example")
		is.Equal(status, http.StatusMethodNotAllowed)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "")
		// The request itself, sent anyway, gets no CORS headers either.
		_, _, hdr = ts.do(t, r.method, r.path, nil, "Origin", "https://app.example")
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "") // r.path
	}

	status, _ := preflight(http.MethodGet, "/sse", "https://evil.example")
	is.Equal(status, http.StatusForbidden)
	denied := ts.Logs.Records("denied")
	is.Equal(len(denied), 1)
	is.Equal(denied[0]["code"], "origin_not_allowed")
}
