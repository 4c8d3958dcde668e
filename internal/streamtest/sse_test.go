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
	ready := sse.Next(t)
	is.Equal(ready.Retry, "2000")
	is.Equal(ready.JSON(t)["a"], float64(1))
	is.Equal(sse.Next(t), streamtest.Event{ID: "8", Data: "one\ntwo"})
	_, ok := sse.NextOrEnd(t) // an event without data is not dispatched
	is.True(!ok)
	sse.Ended(t)
	is.NoErr(sse.Err)
	is.Equal(<-sse.Comments, ": hello")
}
