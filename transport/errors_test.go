package transport_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// What no handler answers still gets the API's one JSON error shape: an
// unknown route (404) and a wrong method (405, with Allow).

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
