package transport_test

import (
	"net/http"
	"testing"

	"github.com/matryer/is"
)

// TestProbes: /livez says the process serves, /readyz that it accepts
// sends, and it stops being ready once shutdown begins (streams are told
// to reconnect elsewhere; a load balancer should send new work elsewhere
// too).
func TestProbes(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	status, body, _ := ts.do(t, http.MethodGet, "/livez", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body["status"], "ok")
	status, body, _ = ts.do(t, http.MethodGet, "/readyz", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body["status"], "ready")

	ts.Transport.CloseStreams() // what http.Server.Shutdown runs first
	status, body, _ = ts.do(t, http.MethodGet, "/readyz", nil)
	is.Equal(status, http.StatusServiceUnavailable)
	is.Equal(body["reason"], "shutting_down")
	status, _, _ = ts.do(t, http.MethodGet, "/livez", nil)
	is.Equal(status, http.StatusOK)
}
