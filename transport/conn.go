package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"notification-service/auth"
	"notification-service/broker"
)

// Reasons a stream ends, sent to the client where the transport allows and
// recorded in the disconnect audit event.
const (
	reasonClientClosed  = "client_closed"
	reasonSlowConsumer  = "slow_consumer"
	reasonShutdown      = "server_shutdown"
	reasonPingTimeout   = "ping_timeout"
	reasonWriteFailed   = "write_failed"
	reasonReplayFailed  = "replay_failed"
	reasonCursorExpired = "cursor_expired"
	reasonTokenExpired  = "token_expired"
	// reasonResync: the instance's live feed had a gap it could not fill
	// (cut off from Redis too long, or Redis lost its data); the client
	// reconnects and resumes from its cursor.
	reasonResync = "resync"
)

const (
	// maxFramesPerWrite bounds how many queued frames one write coalesces.
	maxFramesPerWrite = 64
	// readyRetryMillis is the SSE reconnect delay a browser is told.
	readyRetryMillis = 2000
	// resumeGrace is how long a resumed WebSocket connection without
	// channels in its URL waits for the client's first frame before it
	// catches up: the seed's client subscribes in onopen, about one round
	// trip after the upgrade, and those channels must be replayed too.
	resumeGrace = 500 * time.Millisecond
)

// conn is one live SSE or WebSocket connection as the hub sees it: a
// bounded queue the hub fills without ever blocking, and a kick that ends
// the stream with a reason.
type conn struct {
	id        string
	userID    string
	transport string
	remote    string

	queue chan *broker.Frame
	beat  chan struct{}
	// registered is closed once the hub knows the connection: a WebSocket
	// client may send its first subscribe the moment the socket opens,
	// and acting on it earlier would answer connection_not_found.
	registered chan struct{}
	// firstAction is closed once a WebSocket client's first frame has been
	// handled; a resumed connection's catch-up may wait for it.
	firstAction     chan struct{}
	firstActionOnce sync.Once

	kickOnce sync.Once
	// kicked ends when the connection must close. Writes run under it, so
	// a writer blocked on a peer that stopped reading (the usual way a
	// queue overflows) is released at once, rather than holding its socket
	// and its place in the hub for the whole write timeout and ending as a
	// mere write failure.
	kicked  context.Context
	kickNow context.CancelFunc
	reason  string

	// claims are the token's (nil in open mode): what a subscribe frame
	// may ask for.
	claims *auth.Claims
	// expiry is the connection's entry in the token expiry queue, guarded
	// by that queue's lock.
	expiry *expiryEntry
}

func newConn(id, userID, transport, remote string, queueSize int) *conn {
	kicked, kickNow := context.WithCancel(context.Background())
	return &conn{
		id: id, userID: userID, transport: transport, remote: remote,
		queue:       make(chan *broker.Frame, queueSize),
		beat:        make(chan struct{}, 1),
		registered:  make(chan struct{}),
		firstAction: make(chan struct{}),
		kicked:      kicked,
		kickNow:     kickNow,
	}
}

// Deliver queues f; a full queue means the client is not keeping up, and it
// is closed (it resumes from its cursor) rather than slowing the hub.
func (c *conn) Deliver(f *broker.Frame) {
	select {
	case c.queue <- f:
	default:
		c.kick(reasonSlowConsumer)
	}
}

// Resync implements broker.Resyncer: the stream ends with a reconnect hint
// and the client resumes from its cursor.
func (c *conn) Resync() { c.kick(reasonResync) }

// heartbeat asks the writer for a heartbeat; one pending request is enough.
func (c *conn) heartbeat() {
	select {
	case c.beat <- struct{}{}:
	default:
	}
}

// actionHandled marks the client's first frame handled.
func (c *conn) actionHandled() {
	c.firstActionOnce.Do(func() { close(c.firstAction) })
}

func (c *conn) kick(reason string) {
	c.kickOnce.Do(func() {
		c.reason = reason
		c.kickNow()
	})
}

// frameWriter is what a transport does with frames; the stream loop below
// is the same for SSE and WebSocket.
type frameWriter interface {
	// write sends frames in order, flushing once.
	write(ctx context.Context, frames []*broker.Frame) error
	heartbeat(ctx context.Context) error
	// end tells the client why the stream ends, where the transport can.
	end(reason string)
}

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

// stream runs one connection from registration to its end: ready, replay
// (or reset), then live frames and heartbeats, and the final word. It
// returns the reason the stream ended.
func (s *Server) stream(ctx context.Context, c *conn, p streamParams, w frameWriter) string {
	start := p.cursor
	if !p.resume {
		// Read the head before registering: whatever is published in
		// between is replayed, whatever comes after arrives live.
		head, err := s.bus.Head(ctx)
		if err != nil {
			s.log.Error("stream: read head", slog.String("connection_id", c.id), slog.Any("error", err))
			w.end(reasonReplayFailed)
			return reasonReplayFailed
		}
		start = head
	}
	if err := s.hub.Register(c.id, c.userID, p.channels, c); err != nil {
		s.log.Error("stream: register", slog.String("connection_id", c.id), slog.Any("error", err))
		w.end(reasonReplayFailed)
		return reasonReplayFailed
	}
	close(c.registered)
	if !p.expiresAt.IsZero() {
		s.expiry.add(c, p.expiresAt)
	}
	s.audit.Record("connect", slog.String("connection_id", c.id), slog.String("user_id", c.userID),
		slog.String("transport", c.transport), slog.String("remote_addr", c.remote), slog.Any("channels", p.channels),
		slog.Bool("resume", p.resume))

	reason := s.pump(ctx, c, p, start, w)
	// Leave the hub before the last word: ending a stream to a peer that
	// stopped reading can take a write timeout, and it must not hold a
	// place in the fan-out meanwhile.
	s.hub.Unregister(c.id)
	s.expiry.remove(c)
	w.end(reason)
	s.audit.Record("disconnect", slog.String("connection_id", c.id), slog.String("user_id", c.userID),
		slog.String("transport", c.transport), slog.String("remote_addr", c.remote), slog.String("reason", reason))
	return reason
}

// pump writes the catch-up frames, then live frames and heartbeats, until
// the stream must end, and says why.
func (s *Server) pump(ctx context.Context, c *conn, p streamParams, start broker.Cursor, w frameWriter) string {
	if p.resume && c.transport == "ws" && len(p.channels) == 0 {
		grace := time.NewTimer(resumeGrace)
		select {
		case <-c.firstAction:
		case <-grace.C:
		case <-ctx.Done():
		}
		grace.Stop()
	}
	first, lastSeq, err := s.catchUp(ctx, c, p, start)
	if err != nil {
		s.log.Error("stream: replay", slog.String("connection_id", c.id), slog.Any("error", err))
		return reasonReplayFailed
	}
	// Writes run under a context a kick cancels, so a writer blocked on a
	// peer that stopped reading (the usual way a queue overflows) is
	// released at once.
	wctx, stopWrites := context.WithCancel(ctx)
	defer stopWrites()
	defer context.AfterFunc(c.kicked, stopWrites)()
	// A long catch-up goes out in bounded pieces, each with its own write
	// deadline, so a big replay on a slow link still makes progress.
	for chunk := range slices.Chunk(first, maxFramesPerWrite) {
		if err := w.write(wctx, chunk); err != nil {
			return c.failure(reasonWriteFailed)
		}
	}

	batch := make([]*broker.Frame, 0, maxFramesPerWrite)
	for {
		select {
		case <-ctx.Done():
			return reasonClientClosed
		case <-s.shuttingDown:
			return reasonShutdown
		case <-c.kicked.Done():
			return c.reason
		case <-c.beat:
			if err := w.heartbeat(wctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return c.failure(reasonPingTimeout)
				}
				return c.failure(reasonWriteFailed)
			}
		case f := <-c.queue:
			batch = batch[:0]
			batch, lastSeq = appendFresh(batch, f, lastSeq)
		drain:
			for len(batch) < maxFramesPerWrite {
				select {
				case f := <-c.queue:
					batch, lastSeq = appendFresh(batch, f, lastSeq)
				default:
					break drain
				}
			}
			if len(batch) == 0 {
				continue
			}
			if err := w.write(wctx, batch); err != nil {
				return c.failure(reasonWriteFailed)
			}
		}
	}
}

// failure says why a write failed: when a kick cancelled it, the kick's
// reason; otherwise the write's own.
func (c *conn) failure(reason string) string {
	if c.kicked.Err() != nil {
		return c.reason
	}
	return reason
}

// appendFresh drops notifications the connection already has (replay and
// live overlap while it catches up); control frames always pass.
func appendFresh(batch []*broker.Frame, f *broker.Frame, lastSeq uint64) ([]*broker.Frame, uint64) {
	if f.Seq == 0 {
		return append(batch, f), lastSeq
	}
	if f.Seq <= lastSeq {
		return batch, lastSeq
	}
	return append(batch, f), f.Seq
}

// catchUp builds the first frames of a stream: ready, then what the client
// missed, or a reset when that cannot be given whole. It returns the
// sequence number the live part continues after.
func (s *Server) catchUp(ctx context.Context, c *conn, p streamParams, start broker.Cursor) ([]*broker.Frame, uint64, error) {
	var replay []*broker.Frame
	var reset bool
	var err error
	if p.resume && start.Epoch == "" {
		reset = true
	} else {
		replay, err = s.bus.Replay(ctx, c.id, start)
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
		if start, err = s.bus.Head(ctx); err != nil {
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
		"cursor":        start.String(),
	})
	ready.Cursor = start.String()
	frames := append(make([]*broker.Frame, 0, len(replay)+2), ready)
	if reset {
		frames = append(frames, broker.EventFrame("reset", map[string]any{"reason": reasonCursorExpired}))
		s.log.Info("stream: cursor reset", slog.String("connection_id", c.id), slog.String("user_id", c.userID))
	}
	lastSeq := start.Seq
	for _, f := range replay {
		frames = append(frames, f)
		lastSeq = max(lastSeq, f.Seq)
	}
	return frames, lastSeq, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
