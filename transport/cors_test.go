package transport_test

import (
	"net/http"
	"strings"
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

// TestAPICORS: the origin rules, with any origin allowed and with a list:
// what a preflight and a request are answered, credentials only for a
// named origin.
func TestAPICORS(t *testing.T) {
	t.Run("any origin", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t)
		status, body, hdr := ts.do(t, http.MethodOptions, "/sse?user_id=u", nil,
			"Origin", "https://app.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "last-event-id")
		is.Equal(status, http.StatusNoContent)
		is.Equal(body, nil)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "*")
		is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "") // a wildcard never carries cookies
		is.True(strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "GET"))
		is.True(strings.Contains(strings.ToLower(hdr.Get("Access-Control-Allow-Headers")), "last-event-id"))
		is.True(strings.Contains(hdr.Get("Vary"), "Origin"))

		status, _, hdr = ts.do(t, http.MethodGet, "/health", nil, "Origin", "https://app.example")
		is.Equal(status, http.StatusOK)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "*")
		is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "") // a wildcard never carries cookies

		status, _, hdr = ts.do(t, http.MethodGet, "/api/v1/notifications/user/u", nil, "Origin", "https://other.example")
		is.Equal(status, http.StatusOK)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "*")
		is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "") // a wildcard never carries cookies

		// Without Origin, no CORS headers.
		_, _, hdr = ts.do(t, http.MethodGet, "/health", nil)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "")
	})
	t.Run("restricted origins", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t, func(o *testConfig) {
			o.AllowedOrigins = []string{"https://app.example"}
		})
		status, _, hdr := ts.do(t, http.MethodGet, "/health", nil, "Origin", "https://app.example")
		is.Equal(status, http.StatusOK)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "https://app.example")
		is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "true")
		status, _, hdr = ts.do(t, http.MethodOptions, "/sse", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "GET")
		is.Equal(status, http.StatusNoContent)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "https://app.example")

		status, _, hdr = ts.do(t, http.MethodGet, "/health", nil, "Origin", "https://evil.example")
		is.Equal(status, http.StatusOK)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "")
		status, body, hdr := ts.do(t, http.MethodOptions, "/sse", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
		is.True(status >= 400) // the preflight fails
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "")
		apiWantError(t, status, body, hdr, http.StatusForbidden, "origin_not_allowed", "")
	})
}
