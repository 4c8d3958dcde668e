package transport

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"notification-service/auth"
	"notification-service/broker"
)

// handleSSE serves GET /sse: a Server-Sent Events stream a browser opens
// with a plain EventSource. Bad parameters are answered 400 before the
// stream starts (EventSource then stops retrying, which is right for a bad
// URL or token); a stream that must end later (its token expiring
// included) is closed after a last event, never answered with an error
// status.
func (s *Server) handleSSE() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := s.allowConnectFrom(r); e != nil {
			writeError(w, e)
			return
		}
		p, e := s.streamParams(r)
		if e != nil {
			s.refuse(w, r, e)
			return
		}
		release, e := s.admitUser(p.userID)
		if e != nil {
			writeError(w, e)
			return
		}
		defer release()
		rc := http.NewResponseController(w)
		// The server's WriteTimeout would cut the stream silently; each
		// write sets its own deadline instead.
		if err := rc.SetWriteDeadline(time.Time{}); err != nil {
			s.fail(w, r, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		// Send the headers now: the client learns the stream is open even
		// while its catch-up is still being read.
		if err := rc.Flush(); err != nil {
			return
		}

		c := newConn(broker.NewID(), p.userID, "sse", r.RemoteAddr, s.opts.QueueSize)
		c.claims = p.claims
		sw := &sseWriter{w: w, rc: rc, timeout: s.opts.WriteTimeout}
		s.stream(r.Context(), c, p, sw)
	})
}

// sseWriter frames frames as SSE events. Notifications use the default event
// type and carry their cursor as id:, so EventSource.onmessage sees them and
// Last-Event-ID resumes after them; control events are named.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
}

func (sw *sseWriter) write(ctx context.Context, frames []*broker.Frame) error {
	b := sw.buf[:0]
	for _, f := range frames {
		b = appendEvent(b, f)
	}
	err := sw.sendCtx(ctx, b)
	// Keep a small buffer for the next write, not a burst's worth for the
	// connection's whole life.
	if cap(b) <= maxKeptBuffer {
		sw.buf = b
	} else {
		sw.buf = nil
	}
	return err
}

// maxKeptBuffer is the largest write buffer an SSE connection keeps.
const maxKeptBuffer = 16 << 10

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

func (sw *sseWriter) heartbeat(ctx context.Context) error {
	return sw.sendCtx(ctx, []byte(": heartbeat\n\n"))
}

// sendCtx is send that gives up when ctx ends (the connection was kicked):
// moving the deadline to now releases a write blocked on a client that
// stopped reading.
func (sw *sseWriter) sendCtx(ctx context.Context, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = sw.rc.SetWriteDeadline(time.Now()) })
	defer stop()
	return sw.send(b)
}

func (sw *sseWriter) send(b []byte) error {
	if err := sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout)); err != nil {
		return err
	}
	if _, err := sw.w.Write(b); err != nil {
		return err
	}
	return sw.rc.Flush()
}

// end writes the last event: "reconnect" on shutdown (the browser's own
// retry then finds another instance), "error" with the reason otherwise.
func (sw *sseWriter) end(reason string) {
	var f *broker.Frame
	switch reason {
	case reasonShutdown, reasonResync:
		f = broker.EventFrame("reconnect", map[string]any{"reason": reason})
	case reasonClientClosed, reasonWriteFailed, reasonPingTimeout:
		return
	default:
		f = broker.EventFrame("error", map[string]any{"code": reason, "message": endMessage(reason)})
	}
	_ = sw.send(appendEvent(nil, f))
}

func endMessage(reason string) string {
	switch reason {
	case reasonSlowConsumer:
		return "the connection fell too far behind; reconnect to resume from your last event id"
	case reasonReplayFailed:
		return "could not replay missed notifications; reconnect"
	case reasonTokenExpired:
		return "the token has expired; get a new token and reconnect with it"
	}
	return reason
}

// streamParams reads the user, channels and resume cursor shared by both
// transports. In open mode user_id names the user; in token mode the
// token does, a user_id given must agree with it, and every channel must
// be one the token allows. A cursor comes from the Last-Event-ID header
// (EventSource sends it on reconnect) or the last_event_id query
// parameter.
func (s *Server) streamParams(r *http.Request) (streamParams, *apiError) {
	q := r.URL.Query()
	userID := q.Get("user_id")
	var claims *auth.Claims
	if s.tokens != nil {
		c, e := s.authenticateUser(r)
		if e != nil {
			return streamParams{}, e
		}
		if userID != "" && userID != c.UserID {
			return streamParams{}, forbiddenUser()
		}
		userID, claims = c.UserID, &c
	} else if e := userParam("user_id", userID); e != nil {
		return streamParams{}, e
	}
	channels, e := channelsParam(r, s.opts.MaxChannels)
	if e != nil {
		return streamParams{}, e
	}
	if e := forbiddenChannel(claims, channels); e != nil {
		return streamParams{}, e
	}
	p := streamParams{userID: userID, channels: channels, claims: claims}
	if claims != nil {
		p.expiresAt = claims.ExpiresAt.Add(s.tokens.Leeway())
	}
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = q.Get("last_event_id")
	}
	if raw != "" {
		p.resume = true
		// A malformed cursor is an unknown one: the stream answers with a
		// reset event rather than refusing, so the client recovers.
		p.cursor, _ = broker.ParseCursor(raw)
	}
	return p, nil
}
