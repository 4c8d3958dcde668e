package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"notification-service/auth"
	"notification-service/broker"
)

// What every transport does the same way: admit a stream (admitStream),
// start it with its catch-up (streams.start), and end it (conn.finish).

const (
	// readyRetryMillis is the SSE reconnect delay a browser is told.
	readyRetryMillis = 2000
	// resumeGrace is how long a resumed WebSocket connection without
	// channels in its URL waits for the client's first frame before it
	// catches up: the seed's client subscribes in onopen, about one round
	// trip after the upgrade, and those channels must be replayed too.
	resumeGrace = 500 * time.Millisecond
)

type streamParams struct {
	userID   string
	channels []string
	// cursor is where the client resumes; resume says whether it gave one
	// (a malformed one counts as given, and expired).
	cursor broker.Cursor
	resume bool
	// claims are the token's, nil in open mode; the stream ends at
	// expiresAt (zero: never).
	claims    *auth.Claims
	expiresAt time.Time
}

// admitStream runs the checks every stream passes before it starts, in
// order: the connect rate of its address, its parameters and token, check
// (the WebSocket handshake; nil for none), and a slot among its user's
// connections, which release gives back. When a check fails it returns
// the refusal for the transport to answer (refuseStream).
func (s *Server) admitStream(r *http.Request, check func() *apiError) (p streamParams, release func(), e *apiError) {
	if e := s.allowConnectFrom(r); e != nil {
		return p, nil, e
	}
	p, e = s.streamParams(r)
	if e != nil {
		return p, nil, e
	}
	if check != nil {
		if e := check(); e != nil {
			return p, nil, e
		}
	}
	release, e = s.admitUser(p.userID)
	if e != nil {
		return p, nil, e
	}
	return p, release, nil
}

// retryable says whether a refused stream should come back by itself: it
// met a limit (429) or an instance going away or cut from its store (503),
// as a reconnect storm does; a bad URL or token should not.
func retryable(e *apiError) bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// streamParams reads the user, channels and resume cursor shared by the
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

// start registers c and writes its catch-up (ready, then what it missed,
// or a reset). The caller holds the writer role and gives it up here, to
// the writers when frames arrived live meanwhile: when start returns, a
// hijacked connection runs by itself, and one inside net/http is served by
// its handler's loop. ctx is the request's, used only while start runs.
func (s *streams) start(ctx context.Context, c *conn, p streamParams) {
	c.mu.Lock()
	failed := c.reason != "" // its response head could not be written
	c.mu.Unlock()
	if failed {
		c.yield(nil)
		return
	}
	from := p.cursor
	if !p.resume {
		// Read the head before registering: whatever is published in
		// between is replayed, whatever comes after arrives live.
		head, err := s.bus.Head(ctx)
		if err != nil {
			s.logger.Error("stream: read head", slog.String("connection_id", c.id), slog.Any("error", err))
			c.kick(reasonReplayFailed)
			c.yield(nil)
			return
		}
		from = head
	}
	if err := s.hub.Register(c.id, c.userID, p.channels, c); err != nil {
		s.logger.Error("stream: register", slog.String("connection_id", c.id), slog.Any("error", err))
		c.kick(reasonReplayFailed)
		c.yield(nil)
		return
	}
	c.joined = true
	s.metrics.ConnectionOpened(c.transport)
	if c.registered != nil {
		close(c.registered)
	}
	if !p.expiresAt.IsZero() {
		s.expiry.add(c, p.expiresAt)
	}
	s.audit.Record("connect", slog.String("connection_id", c.id), slog.String("user_id", c.userID),
		slog.String("transport", c.transport), slog.String("remote_addr", c.remote), slog.Any("channels", p.channels),
		slog.Bool("resume", p.resume))
	// closeAll kicks the connections the hub holds; one registering after
	// it looked sees that it was called.
	select {
	case <-s.shuttingDown:
		c.kick(reasonShutdown)
	default:
	}

	if p.resume && c.firstAction != nil && len(p.channels) == 0 {
		grace := time.NewTimer(resumeGrace)
		select {
		case <-c.firstAction:
		case <-grace.C:
		case <-ctx.Done():
		}
		grace.Stop()
	}
	first, lastSeq, err := s.catchUp(ctx, c, p, from)
	if err != nil {
		s.logger.Error("stream: replay", slog.String("connection_id", c.id), slog.Any("error", err))
		c.kick(reasonReplayFailed)
	} else {
		c.lastSeq = lastSeq
		c.writeFrames(first)
	}
	c.yield(nil)
}

// catchUp builds the first frames of a stream: ready, then what the client
// missed, or a reset when that cannot be given whole. It returns the
// sequence number the live part continues after.
func (s *streams) catchUp(ctx context.Context, c *conn, p streamParams, from broker.Cursor) ([]*broker.Frame, uint64, error) {
	var replay []*broker.Frame
	var reset bool
	var err error
	switch {
	case p.resume && from.Epoch == "":
		reset = true
	case !p.resume && p.userID == "" && len(p.channels) == 0:
		// Nothing can have been published for a connection of no user on
		// no channel (a Pusher connection before it subscribes).
	default:
		replay, err = s.bus.Replay(ctx, c.id, from)
		if errors.Is(err, broker.ErrCursorExpired) {
			reset = true
		} else if err != nil {
			return nil, 0, fmt.Errorf("replay for %s: %w", c.id, err)
		}
	}
	if reset {
		// Continue from now: the client refetches its inbox for what came
		// before. Live frames already queued at or before the head were
		// published before the reset point and are skipped.
		if from, err = s.bus.Head(ctx); err != nil {
			return nil, 0, fmt.Errorf("head for %s: %w", c.id, err)
		}
		replay = nil
	}

	// The channels the connection holds now, as the replay saw them: on a
	// resumed WebSocket they include what its first frame subscribed to.
	channels := p.channels
	if sub, ok := s.hub.Connection(c.id); ok {
		channels = sub.Channels
	}
	ready := broker.EventFrame("ready", map[string]any{
		"connection_id": c.id,
		"user_id":       c.userID,
		"channels":      nonNil(channels),
		"cursor":        from.String(),
	})
	ready.Cursor = from.String()
	frames := append(make([]*broker.Frame, 0, len(replay)+2), ready)
	if reset {
		frames = append(frames, broker.EventFrame("reset", map[string]any{"reason": reasonCursorExpired}))
		s.logger.Info("stream: cursor reset", slog.String("connection_id", c.id), slog.String("user_id", c.userID))
	}
	lastSeq := from.Seq
	for _, f := range replay {
		frames = append(frames, f)
		lastSeq = max(lastSeq, f.Seq)
	}
	return frames, lastSeq, nil
}

// finish ends the stream: it leaves the hub, tells the client why where
// the transport can, closes the connection and gives back what it held.
// The writer role runs it, once, and keeps the role for good.
func (c *conn) finish() {
	s := c.streams
	// Leave the hub before the last word: ending a stream to a peer that
	// stopped reading can take a write timeout, and it must not hold a
	// place in the fan-out meanwhile.
	if c.joined {
		s.hub.Unregister(c.id)
		s.metrics.ConnectionClosed(c.transport, string(c.reason))
		s.expiry.remove(c)
	}
	if !c.broken {
		// The kick's abort was for the writes it interrupted; the last
		// word gets a deadline of its own.
		c.aborted.Store(false)
		c.w.end(c.reason)
	}
	if !c.joined && c.registered != nil {
		close(c.registered) // the reader waits for it
	}
	c.w.close()
	if c.peerDone != nil {
		<-c.peerDone
	}
	if c.joined {
		s.audit.Record("disconnect", slog.String("connection_id", c.id), slog.String("user_id", c.userID),
			slog.String("transport", c.transport), slog.String("remote_addr", c.remote), slog.String("reason", string(c.reason)))
	}
	c.release()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
