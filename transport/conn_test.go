package transport_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/textproto"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// TestSSEOverHTTP2: a stream over HTTP/2, which cannot be taken out of
// net/http, works as over HTTP/1.1: ready, live notifications, heartbeats,
// resume, and the reconnect hint at shutdown.
func TestSSEOverHTTP2(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(c *testConfig) {
		c.Start = func(s *httptest.Server) {
			s.EnableHTTP2 = true
			s.StartTLS()
		}
		c.HeartbeatInterval = 50 * time.Millisecond
	})
	q := query("user_id", "alice", "channels", "news")
	sse := ts.dialSSE(t, q)
	is.Equal(sse.Resp.ProtoMajor, 2)
	start := sse.Ready(t)["cursor"].(string)

	ids := []string{
		ts.send(t, map[string]any{"title": "one", "user_id": "alice"}),
		ts.send(t, map[string]any{"title": "two", "channels": []string{"news"}}),
	}
	is.Equal(streamtest.IDs(sse.NextNotifications(t, 2)), ids)
	is.Equal(sse.NextComment(t), ": heartbeat")

	resumed := ts.dialSSE(t, q, "Last-Event-ID", start)
	is.Equal(resumed.Resp.ProtoMajor, 2)
	resumed.Ready(t)
	is.Equal(streamtest.IDs(resumed.NextNotifications(t, 2)), ids)

	ts.Transport.CloseStreams()
	for _, c := range []*sseClient{sse, resumed} {
		ev := c.Next(t)
		for ev.Event() == "notification" { // queued before the shutdown
			ev = c.Next(t)
		}
		is.Equal(ev.Event(), "reconnect")
		c.Ended(t)
	}
	streamtest.Eventually(t, "the hub to empty", func() bool { return ts.Hub.Len() == 0 })
}

// TestSSEResponseHead: over HTTP/1.1 the stream is served on the hijacked
// connection with a head of its own: the same headers as before (CORS
// included), no chunked encoding, the body ending with the connection.
func TestSSEResponseHead(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	is.NoErr(err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /sse?%s HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n", query("user_id", "alice"))
	is.NoErr(err)
	is.NoErr(conn.SetReadDeadline(time.Now().Add(waitTimeout)))
	r := textproto.NewReader(bufio.NewReader(conn))
	status, err := r.ReadLine()
	is.NoErr(err)
	is.Equal(status, "HTTP/1.1 200 OK")
	h, err := r.ReadMIMEHeader()
	is.NoErr(err)
	is.Equal(h.Get("Content-Type"), "text/event-stream")
	is.Equal(h.Get("Cache-Control"), "no-cache")
	is.Equal(h.Get("X-Accel-Buffering"), "no")
	is.Equal(h.Get("Connection"), "close")
	is.Equal(h.Get("Access-Control-Allow-Origin"), "*")
	is.True(h.Get("Date") != "")
	is.Equal(h.Get("Transfer-Encoding"), "")
	is.Equal(h.Get("Content-Length"), "")
	line, err := r.ReadLine()
	is.NoErr(err)
	is.Equal(line, "retry: 2000")
	line, err = r.ReadLine()
	is.NoErr(err)
	is.Equal(line, "event: ready")
}

// TestLiveAfterWriteTimeout: the write timeout bounds each write, not the
// stream: notifications still arrive long after the catch-up's deadline.
func TestLiveAfterWriteTimeout(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(o *testConfig) {
		o.WriteTimeout = 50 * time.Millisecond
	})
	q := query("user_id", "alice")
	sse := ts.dialSSE(t, q)
	sse.Ready(t)
	ws := ts.dialWS(t, q)
	ws.Ready(t)
	// Time passing is the point here: let the deadline of every write so
	// far expire.
	time.Sleep(4 * 50 * time.Millisecond)
	for range 3 {
		id := ts.send(t, map[string]any{"title": "x", "user_id": "alice"})
		sse.NextNotification(t, id)
		ws.NextNotification(t, id)
	}
	is.Equal(ts.disconnects(), []string(nil))
}

// TestWSAnswersPings: the server answers a client's ping (through the
// connection's writer, between notifications).
func TestWSAnswersPings(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	ws := ts.dialWS(t, query("user_id", "alice"))
	ws.Ready(t)
	for i := range 3 {
		id := ts.send(t, map[string]any{"title": fmt.Sprint(i), "user_id": "alice"})
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		is.NoErr(ws.Conn.Ping(ctx)) // the reader goroutine takes the pong
		cancel()
		ws.NextNotification(t, id)
	}
}
