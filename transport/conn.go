package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

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
	maxFramesPerWrite   = 64
	readyRetryMillis    = 2000
	reasonCursorExpired = "cursor_expired"
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

	kickOnce sync.Once
	kicked   chan struct{}
	reason   string
}

func newConn(id, userID, transport, remote string, queueSize int) *conn {
	return &conn{
		id: id, userID: userID, transport: transport, remote: remote,
		queue:  make(chan *broker.Frame, queueSize),
		beat:   make(chan struct{}, 1),
		kicked: make(chan struct{}),
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

// heartbeat asks the writer for a heartbeat; one pending request is enough.
func (c *conn) heartbeat() {
	select {
	case c.beat <- struct{}{}:
	default:
	}
}

func (c *conn) kick(reason string) {
	c.kickOnce.Do(func() {
		c.reason = reason
		close(c.kicked)
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
}

// stream runs one connection from registration to its end: ready, replay
// (or reset), then live frames, heartbeats and the final word. It returns
// the reason the stream ended.
func (s *Server) stream(ctx context.Context, c *conn, p streamParams, w frameWriter) string {
	if !s.streamStarted() {
		w.end(reasonShutdown)
		return reasonShutdown
	}
	defer s.streamEnded()

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
	defer s.hub.Unregister(c.id)
	s.audit.Record("connect", slog.String("connection_id", c.id), slog.String("user_id", c.userID),
		slog.String("transport", c.transport), slog.String("remote_addr", c.remote), slog.Any("channels", p.channels),
		slog.Bool("resume", p.resume))

	first, lastSeq, err := s.catchUp(ctx, c, p, start)
	if err != nil {
		s.log.Error("stream: replay", slog.String("connection_id", c.id), slog.Any("error", err))
		w.end(reasonReplayFailed)
		return reasonReplayFailed
	}
	if err := w.write(ctx, first); err != nil {
		return reasonWriteFailed
	}

	batch := make([]*broker.Frame, 0, maxFramesPerWrite)
	for {
		select {
		case <-ctx.Done():
			return reasonClientClosed
		case <-s.shuttingDown:
			w.end(reasonShutdown)
			return reasonShutdown
		case <-c.kicked:
			w.end(c.reason)
			return c.reason
		case <-c.beat:
			if err := w.heartbeat(ctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return reasonPingTimeout
				}
				return reasonWriteFailed
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
			if err := w.write(ctx, batch); err != nil {
				return reasonWriteFailed
			}
		}
	}
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
		replay, err = s.bus.Replay(ctx, c.userID, p.channels, start)
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

	ready := broker.EventFrame("ready", map[string]any{
		"connection_id": c.id,
		"user_id":       c.userID,
		"channels":      nonNil(p.channels),
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
