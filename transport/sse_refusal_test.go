package transport_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/transport"
)

// TestSSERefusalAnEventSourceRetries: a connect refused by a limit is, for
// a client that asks for an event stream (EventSource does), a 200 stream
// that sets the reconnect delay and says why, then ends, so EventSource
// comes back later instead of giving up for good; other clients get the
// JSON 429, and a bad URL stays a 400 that EventSource must not retry.
func TestSSERefusalAnEventSourceRetries(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(c *testConfig) {
		c.Rates.ConnectsPerUser = transport.Rate{PerSecond: 0.5, Burst: 1}
	})
	ts.dialSSE(t, query("user_id", "ana")).Ready(t) // spends ana's one connect

	get := func(rawQuery, accept string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/sse?"+rawQuery, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := ts.Client().Do(req)
		is.NoErr(err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body) // the stream ends by itself
		return resp, string(body)
	}
	resp, body := get(query("user_id", "ana"), "text/event-stream")
	is.Equal(resp.StatusCode, http.StatusOK)
	is.Equal(resp.Header.Get("Content-Type"), "text/event-stream")
	is.True(strings.HasPrefix(body, "retry: "))
	is.True(strings.Contains(body, "event: error\n"))
	is.True(strings.Contains(body, `"code":"rate_limited"`))
	is.True(strings.Contains(body, `"retry_after_ms":`))

	resp, body = get(query("user_id", "ana"), "")
	is.Equal(resp.StatusCode, http.StatusTooManyRequests)
	is.True(resp.Header.Get("Retry-After") != "")
	is.True(strings.Contains(body, `"rate_limited"`))

	resp, _ = get("user_id=a%2Fb", "text/event-stream")
	is.Equal(resp.StatusCode, http.StatusBadRequest)
}
