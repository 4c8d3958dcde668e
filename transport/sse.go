package transport

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"notification-service/broker"
)

// handleSSE serves GET /sse: a Server-Sent Events stream a browser opens
// with a plain EventSource. Bad parameters are answered 400 before the
// stream starts (EventSource then stops retrying, which is right for a bad
// URL or token); a stream that must end later (its token expiring
// included) is closed after a last event, never answered with an error
// status.
//
// Over HTTP/1.1 the connection is taken out of net/http once the request
// is admitted (hijacked) and the handler returns after the catch-up: a
// stream inside net/http keeps its handler goroutine, a 4 KiB read buffer
// and a 4 KiB write buffer for its whole life, several times what the
// connection needs otherwise (docs/BENCHMARKS.md). HTTP/2 multiplexes
// streams on one connection, which cannot be hijacked: there the stream
// stays inside net/http.
func (s *Server) handleSSE() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, release, e := s.admitStream(r, nil)
		if e != nil {
			s.refuseSSE(w, r, e)
			return
		}
		setEventStreamHeaders(w.Header())
		c := s.streams.newConn(p, "sse", r.RemoteAddr)
		c.release = release
		if s.hijackSSE(w, r, c) {
			s.streams.start(r.Context(), c, p)
			return
		}

		rc := http.NewResponseController(w)
		// The server's WriteTimeout would cut the stream silently; each
		// write sets its own deadline instead.
		if err := rc.SetWriteDeadline(time.Time{}); err != nil {
			release()
			s.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
		// Send the headers now: the client learns the stream is open even
		// while its catch-up is still being read.
		if err := rc.Flush(); err != nil {
			release()
			return
		}
		c.wake = make(chan struct{}, 1)
		c.out = &responseSink{w: w, rc: rc, timeout: s.opts.WriteTimeout, aborted: &c.aborted}
		c.w = sseWriter{out: c.out}
		s.streams.start(r.Context(), c, p)
		// This goroutine is the connection's writer whenever it has
		// something to write, until the stream ends.
		gone := r.Context().Done()
		for {
			select {
			case <-c.wake:
				if c.flush() {
					return
				}
			case <-gone:
				gone = nil
				c.kick(reasonClientClosed)
			}
		}
	})
}

// hijackSSE takes an HTTP/1.x stream's connection out of net/http and
// writes the response head on it. It says false, leaving the response
// untouched, where the stream must stay inside net/http: HTTP/2, or a
// server already closing (whose drain waits for handlers, not for
// hijacked connections; the stream then ends at once with its reconnect
// hint).
func (s *Server) hijackSSE(w http.ResponseWriter, r *http.Request, c *conn) bool {
	if r.ProtoMajor != 1 || !s.streams.started() {
		return false
	}
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.streams.ended()
		return false
	}
	// Whatever the client sent after its request (nothing, from an
	// EventSource) stays unread in net/http's buffer, dropped with it.
	release := c.release
	c.release = func() { release(); s.streams.ended() }
	c.out = newSock(nc, s.opts.WriteTimeout, &c.aborted)
	c.w = sseWriter{out: c.out, conn: nc}
	c.peerDone = make(chan struct{})
	go c.watchPeer(nc)
	if _, err := c.out.Write(sseHead(w.Header())); err != nil {
		c.broken = true
		c.kick(reasonWriteFailed)
	}
	return true
}

// sseHead is the response head of a hijacked stream. With neither a
// Content-Length nor chunked encoding, the body is everything until the
// connection closes (RFC 9112, section 6.3), which is what an event stream
// is: each write is events and nothing else.
func sseHead(h http.Header) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Connection", "close")
	_ = h.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// watchPeer reads the client's side of a hijacked SSE connection. An
// EventSource sends nothing after its request; the read ends when the
// client goes away, which ends the stream at once rather than at its next
// write. Blocked in the read, it is the only goroutine an idle SSE
// connection has, with the smallest stack there is.
func (c *conn) watchPeer(nc net.Conn) {
	defer close(c.peerDone)
	var discard [64]byte
	for {
		if _, err := nc.Read(discard[:]); err != nil {
			c.kick(reasonClientClosed)
			return
		}
	}
}

// sseWriter frames frames as SSE events. Notifications use the default event
// type and carry their cursor as id:, so EventSource.onmessage sees them and
// Last-Event-ID resumes after them; control events are named.
type sseWriter struct {
	out sink
	// conn is the hijacked connection, closed when the stream ends; nil
	// inside net/http, where returning from the handler ends the response.
	conn net.Conn
}

func (sseWriter) appendFrame(b []byte, f *broker.Frame) []byte { return appendEvent(b, f) }

func appendEvent(b []byte, f *broker.Frame) []byte {
	if f.Event == "ready" {
		b = append(b, "retry: "...)
		b = strconv.AppendInt(b, readyRetryMillis, 10)
		b = append(b, '\n')
	}
	if f.Event != "" {
		b = append(b, "event: "...)
		b = append(b, f.Event...)
		b = append(b, '\n')
	}
	if f.Cursor != "" {
		b = append(b, "id: "...)
		b = append(b, f.Cursor...)
		b = append(b, '\n')
	}
	// encoding/json never emits a raw newline, so one data: line holds the
	// whole object.
	b = append(b, "data: "...)
	b = append(b, f.JSON...)
	return append(b, '\n', '\n')
}

func (sseWriter) appendHeartbeat(b []byte) []byte { return append(b, ": heartbeat\n\n"...) }

func (sseWriter) awaitsPong() bool { return false }

// end writes the last event the reason's ending names, if any.
func (sw sseWriter) end(r reason) {
	e := endingOf(r)
	var f *broker.Frame
	switch e.sseEvent {
	case "":
		return
	case "reconnect":
		f = broker.EventFrame("reconnect", map[string]any{"reason": string(r)})
	default:
		f = broker.EventFrame(e.sseEvent, map[string]any{"code": string(r), "message": e.text(r)})
	}
	_, _ = sw.out.Write(appendEvent(nil, f))
}

func (sw sseWriter) close() {
	if sw.conn != nil {
		_ = sw.conn.Close()
	}
}

// refuseSSE answers a stream that may not start. A browser's EventSource
// gives up for good on any status but 200, so a retryable refusal (a
// connect limit met by a reconnect storm, an instance shutting down) is
// answered, to a client that asks for an event stream, with a 200 stream
// that says when to come back (retry:, Retry-After's seconds spread by up
// to half again, so a storm does not return at once) and why (an error
// event with the API's code), then ends: the EventSource reconnects by
// itself, later. Anything else, and every other client, gets the JSON
// error with its status.
func (s *Server) refuseSSE(w http.ResponseWriter, r *http.Request, e *apiError) {
	if !retryable(e) || !acceptsEventStream(r) {
		s.refuse(w, r, e)
		return
	}
	wait := time.Duration(max(e.RetryAfter, 1)) * time.Second
	wait += rand.N(wait / 2)
	h := w.Header()
	setEventStreamHeaders(h)
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	b := append([]byte("retry: "), strconv.FormatInt(wait.Milliseconds(), 10)...)
	b = append(b, '\n', '\n')
	b = appendEvent(b, broker.EventFrame("error", map[string]any{
		"code": e.Code, "message": e.Message, "retry_after_ms": wait.Milliseconds(),
	}))
	_, _ = w.Write(b)
}

// setEventStreamHeaders marks a response as an event stream that no cache
// keeps and no proxy buffers (nginx reads X-Accel-Buffering): every
// text/event-stream answer here, /sse, a refused connect told to retry,
// the dashboard's audit trail.
func setEventStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

// acceptsEventStream says whether the client asked for text/event-stream,
// as EventSource always does.
func acceptsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}
