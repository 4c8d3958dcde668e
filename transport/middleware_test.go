package transport_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// What every request goes through: the JSON answer to an unknown route or
// a wrong method, and CORS.

func TestAPIUnknownRouteAndWrongMethod(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		method, path string
		status       int
		code         string
		allow        string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/api/v1/nope", http.StatusNotFound, "not_found", ""},
		{http.MethodPost, "/api/v2/notifications/send", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/api/v1/notifications/user/", http.StatusNotFound, "not_found", ""},
		{http.MethodPatch, "/health", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodPost, "/health", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodGet, "/api/v1/notifications/send", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{http.MethodPut, "/api/v1/notifications/schedule", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{http.MethodPost, "/api/v1/notifications/user/u1", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodGet, "/api/v1/notifications/u1/n1/read", http.StatusMethodNotAllowed, "method_not_allowed", "PUT"},
		{http.MethodPost, "/api/v1/schedules/s1", http.StatusMethodNotAllowed, "method_not_allowed", "DELETE"},
		{http.MethodGet, "/api/v1/connections/c1/subscribe", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			is := is.New(t)
			status, body, hdr := ts.do(t, tc.method, tc.path, nil)
			apiWantError(t, status, body, hdr, tc.status, tc.code, "")
			if tc.allow == "" {
				is.Equal(hdr.Get("Allow"), "")
				return
			}
			allow := hdr.Get("Allow")
			is.True(strings.Contains(allow, tc.allow)) // Allow lists the right method
			is.True(!strings.Contains(allow, tc.method))
		})
	}
}

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
