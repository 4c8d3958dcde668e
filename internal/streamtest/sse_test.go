package streamtest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// The parser reads a stream as an EventSource would: fields, multi-line
// data, comments apart, and a clean end.
func TestSSEParsesAStream(t *testing.T) {
	is := is.New(t)
	headers := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, ": hello\n\nretry: 2000\nevent: ready\ndata: {\"a\":1}\n\n"+
			"id: 8\ndata: one\ndata:two\n\nevent: nodata\n\n")
	}))
	defer srv.Close()

	sse := streamtest.DialSSE(t, srv.Client(), srv.URL+"/sse?"+streamtest.Query("user_id", "u"), "Last-Event-ID", "7")
	is.Equal(sse.Resp.StatusCode, http.StatusOK)
	h := <-headers
	is.Equal(h.Get("Accept"), "text/event-stream")
	is.Equal(h.Get("Last-Event-ID"), "7")
	ready := sse.NextRaw(t)
	is.Equal(ready.Retry, "2000")
	is.Equal(ready.JSON(t)["a"], float64(1))
	is.Equal(sse.NextRaw(t), streamtest.Event{ID: "8", Data: "one\ntwo"})
	_, ok := sse.NextRawOrEnd(t) // an event without data is not dispatched
	is.True(!ok)
	sse.Ended(t)
	is.NoErr(sse.Err)
	is.Equal(sse.NextComment(t), ": hello")
}

// serveSSE serves body as a text/event-stream and dials it.
func serveSSE(t *testing.T, body string) *streamtest.SSE {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return streamtest.DialSSE(t, srv.Client(), srv.URL)
}

// An SSE event becomes a frame only if its data's event is its name
// ("notification" for the unnamed type) and its id: is its cursor.
func TestSSEFrames(t *testing.T) {
	is := is.New(t)
	sse := serveSSE(t, "event: ready\nid: e-1\ndata: {\"event\":\"ready\",\"cursor\":\"e-1\"}\n\n"+
		"id: e-2\ndata: {\"event\":\"notification\",\"id\":\"n1\",\"cursor\":\"e-2\"}\n\n"+
		"event: read\ndata: {\"event\":\"read\",\"id\":\"n1\"}\n\n")
	is.Equal(sse.Ready(t).Cursor(), "e-1")
	n := sse.NextNotification(t, "n1")
	is.Equal(n, streamtest.Frame{"event": "notification", "id": "n1", "cursor": "e-2"})
	is.Equal(sse.NextEvent(t, "read").Cursor(), "")
	_, ok := sse.NextOrEnd(t)
	is.True(!ok)

	for _, tc := range []struct{ name, body, fails string }{
		{"notification without an id", "data: {\"event\":\"notification\",\"id\":\"n1\",\"cursor\":\"e-2\"}\n\n", "without an id"},
		{"notification whose id is not its cursor", "id: e-3\ndata: {\"event\":\"notification\",\"id\":\"n1\",\"cursor\":\"e-2\"}\n\n", "is not its cursor"},
		{"unnamed event that is no notification", "id: e-2\ndata: {\"event\":\"ready\",\"cursor\":\"e-2\"}\n\n", "carries event"},
		{"name and data disagree", "event: read\ndata: {\"event\":\"deleted\"}\n\n", "carries event"},
		{"control event with an id but no cursor", "event: reset\nid: e-2\ndata: {\"event\":\"reset\"}\n\n", "is not its cursor"},
		{"data not JSON", "data: hello\n\n", "not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sse := serveSSE(t, tc.body)
			wantFailure(t, tc.fails, func(t testing.TB) { sse.Next(t) })
		})
	}
}
