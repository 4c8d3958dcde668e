package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
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
//
// Memory per connection is what limits how many a process holds, so a
// connection has no goroutine of its own to write with. Whoever gives it
// work (the hub's Deliver, the heartbeat, a kick) and finds no writer at
// work takes the writer role (writing) and hands it to the shared writers
// (writers.go), which write without ever waiting on a socket; a peer too
// slow to take a write at once gets a goroutine of its own for as long as
// that write takes (drain), and the end of a stream gets one too (finish),
// since both may block. At most one goroutine holds the role, so frames go
// out in queue order. A stream that stays inside net/http (HTTP/2) has its
// handler goroutine as its writer instead (wake, flush).
type conn struct {
	id        string
	userID    string
	transport string
	remote    string
	srv       *Server
	w         frameWriter
	out       sink
	queueSize int

	// wake, when set, is how the writer role is handed to the handler
	// goroutine of a stream that stays inside net/http; nil for hijacked
	// connections, which the shared writers serve.
	wake chan struct{}
	// peerDone is closed when the goroutine watching the client's side of
	// a hijacked socket has returned; nil inside net/http.
	peerDone chan struct{}
	// registered is closed once the hub knows the connection (or the
	// stream ends without): a WebSocket client may send its first
	// subscribe the moment the socket opens, and acting on it earlier
	// would answer connection_not_found.
	// firstAction is closed once a WebSocket client's first frame has been
	// handled; a resumed connection's catch-up may wait for it. Both are
	// nil on SSE.
	registered      chan struct{}
	firstAction     chan struct{}
	firstActionOnce sync.Once
	// release gives back what admitting the stream took (the user's
	// connection slot, the count WaitStreams waits for).
	release func()

	mu sync.Mutex
	// pending are the frames queued for the writer, at most queueSize;
	// spare is a drained queue kept for reuse.
	pending, spare []*broker.Frame
	// beat asks the writer for a heartbeat.
	beat bool
	// control is a control frame of the transport's own (a WebSocket
	// pong) for the writer to send ahead of the queue.
	control []byte
	// pingSent is when the oldest unanswered WebSocket ping was asked for
	// (zero when none is).
	pingSent time.Time
	// writing says the writer role is held.
	writing bool
	// reason is why the stream ends, once it must ("" until then).
	reason string

	// aborted makes writes fail at once: a kick sets it and moves the
	// write deadline to now, so a writer blocked on a peer that stopped
	// reading (the usual way a queue overflows) is released at once,
	// rather than holding its socket for the whole write timeout and
	// ending as a mere write failure. Writes check it after arming their
	// own deadline, so the kick's deadline is never overridden.
	aborted atomic.Bool

	// Owned by the writer role.
	lastSeq uint64 // the newest notification written; older ones are duplicates
	broken  bool   // a write failed: the stream cannot take another byte
	joined  bool   // registered in the hub and audited as connected

	// claims are the token's (nil in open mode): what a subscribe frame
	// may ask for.
	claims *auth.Claims
	// expiry is the connection's entry in the token expiry queue, guarded
	// by that queue's lock.
	expiry *expiryEntry
}

// newConn returns a connection whose writer role is held by the caller,
// which starts the stream (Server.stream) and so writes before anyone else.
func (s *Server) newConn(userID, transport, remote string) *conn {
	return &conn{
		id: broker.NewID(), userID: userID, transport: transport, remote: remote,
		srv: s, queueSize: s.opts.QueueSize, writing: true, release: func() {},
	}
}

// Deliver queues f; a full queue means the client is not keeping up, and it
// is closed (it resumes from its cursor) rather than slowing the hub.
func (c *conn) Deliver(f *broker.Frame) {
	c.mu.Lock()
	if c.reason != "" {
		c.mu.Unlock()
		return
	}
	if len(c.pending) >= c.queueSize {
		c.mu.Unlock()
		c.srv.metrics.FrameDropped()
		c.kick(reasonSlowConsumer)
		return
	}
	if c.pending == nil {
		c.pending, c.spare = c.spare, nil
	}
	c.pending = append(c.pending, f)
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
}

// Resync implements broker.Resyncer: the stream ends with a reconnect hint
// and the client resumes from its cursor.
func (c *conn) Resync() { c.kick(reasonResync) }

// heartbeat asks the writer for a heartbeat (SSE comment, WebSocket ping).
// A WebSocket peer whose last ping is still unanswered after PongTimeout
// is closed instead.
func (c *conn) heartbeat(now time.Time) {
	c.mu.Lock()
	if c.reason != "" {
		c.mu.Unlock()
		return
	}
	if c.transport == "ws" {
		if !c.pingSent.IsZero() {
			late := now.Sub(c.pingSent) >= c.srv.opts.PongTimeout
			c.mu.Unlock()
			if late {
				c.kick(reasonPingTimeout)
			}
			return
		}
		c.pingSent = now
	}
	c.beat = true
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
}

// sendControl asks the writer to send b, a control frame already framed,
// ahead of the queue; one not yet sent is replaced (a pong answers the
// latest ping, RFC 6455 section 5.5.3).
func (c *conn) sendControl(b []byte) {
	c.mu.Lock()
	if c.reason != "" {
		c.mu.Unlock()
		return
	}
	c.control = b
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
}

// checkPong closes a WebSocket peer that left a ping unanswered for
// PongTimeout.
func (c *conn) checkPong(now time.Time) {
	c.mu.Lock()
	late := !c.pingSent.IsZero() && now.Sub(c.pingSent) >= c.srv.opts.PongTimeout
	c.mu.Unlock()
	if late {
		c.kick(reasonPingTimeout)
	}
}

// pong records that the WebSocket peer answered a ping.
func (c *conn) pong() {
	c.mu.Lock()
	c.pingSent = time.Time{}
	c.mu.Unlock()
}

// actionHandled marks the client's first frame handled.
func (c *conn) actionHandled() {
	c.firstActionOnce.Do(func() { close(c.firstAction) })
}

// kick ends the stream with reason; the first reason given is the one that
// counts.
func (c *conn) kick(reason string) {
	c.mu.Lock()
	if c.reason != "" {
		c.mu.Unlock()
		return
	}
	c.reason = reason
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
		return
	}
	// A writer is running, maybe blocked on a peer that stopped reading:
	// release it. At shutdown a healthy client's write is let finish, so
	// it still gets its reconnect hint; the write timeout bounds the rest.
	if reason != reasonShutdown {
		c.aborted.Store(true)
		c.out.abort()
	}
}

// claimWriterLocked takes the writer role if nobody holds it, and says
// whether the caller must then start the writer. The caller holds c.mu.
func (c *conn) claimWriterLocked() bool {
	if c.writing {
		return false
	}
	c.writing = true
	return true
}

// startWriter hands the writer role, just claimed, to whoever writes for
// this connection.
func (c *conn) startWriter() {
	if c.wake != nil {
		c.wake <- struct{}{} // never blocks: one claim at a time, and the handler drains it
		return
	}
	c.srv.writers.add(c)
}

// yield gives the writer role up once done (the frames just written) is
// out: to the writers again when there is more to do (or the stream must
// end), to nobody otherwise.
func (c *conn) yield(done []*broker.Frame) {
	c.mu.Lock()
	c.recycleLocked(done)
	more := len(c.pending) > 0 || c.beat || c.control != nil || c.reason != ""
	if !more {
		c.writing = false
	}
	c.mu.Unlock()
	if more {
		c.startWriter()
	}
}

// work is one write's worth for the writer: a control frame, up to
// maxFramesPerWrite queued frames, a heartbeat.
type work struct {
	control []byte
	batch   []*broker.Frame
	beat    bool
}

func (w work) none() bool { return w.control == nil && len(w.batch) == 0 && !w.beat }

// next is the writer's next piece of work, once done (the frames just
// written) is out, or that the stream must end. With neither, it gives the
// writer role up and returns nothing.
func (c *conn) next(done []*broker.Frame) (w work, ending bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recycleLocked(done)
	if c.reason != "" {
		return work{}, true
	}
	w = work{control: c.control, batch: c.takeLocked(), beat: c.beat}
	c.control, c.beat = nil, false
	if w.none() {
		c.writing = false
	}
	return w, false
}

// writeSome is the shared writers' turn at c: one batch, written without
// waiting. What the socket does not take at once is left to a goroutine
// of the connection's own (drain), and so is the end of the stream
// (finish): a slow or departing peer never holds up the others.
func (c *conn) writeSome() {
	w, ending := c.next(nil)
	switch {
	case ending:
		go c.finish()
		return
	case w.none():
		return
	}
	fresh := c.fresh(w.batch)
	bp, b := c.encode(w.control, fresh, w.beat)
	n, err := c.out.tryWrite(b)
	if err == nil && n < len(b) {
		go c.drain(bp, b[n:], w.batch, fresh)
		return
	}
	putBuffer(bp)
	c.wrote(fresh, err)
	c.yield(w.batch)
}

// drain finishes a write the socket did not take at once, waiting as long
// as the write timeout allows, then gives the connection back.
func (c *conn) drain(bp *[]byte, rest []byte, batch, fresh []*broker.Frame) {
	_, err := c.out.Write(rest)
	putBuffer(bp)
	c.wrote(fresh, err)
	c.yield(batch)
}

// flush is the writer of a stream inside net/http, run by its handler: it
// writes queued frames and heartbeats until there is nothing left, then
// gives up the writer role, or ends the stream once it must end. It says
// whether the stream has ended.
func (c *conn) flush() (ended bool) {
	var done []*broker.Frame
	for {
		w, ending := c.next(done)
		switch {
		case ending:
			c.finish()
			return true
		case w.none():
			return false
		}
		fresh := c.fresh(w.batch)
		bp, b := c.encode(w.control, fresh, w.beat)
		_, err := c.out.Write(b)
		putBuffer(bp)
		c.wrote(fresh, err)
		done = w.batch
	}
}

// fresh drops, in place, the notifications already sent in the catch-up:
// replay and live overlap while a connection catches up.
func (c *conn) fresh(batch []*broker.Frame) []*broker.Frame {
	fresh := batch[:0]
	for _, f := range batch {
		fresh, c.lastSeq = appendFresh(fresh, f, c.lastSeq)
	}
	return fresh
}

// encode puts a control frame, frames, and a heartbeat if beat, in one
// buffer from the pool: one write for all of them.
func (c *conn) encode(control []byte, frames []*broker.Frame, beat bool) (*[]byte, []byte) {
	bp := writeBuffers.Get().(*[]byte)
	b := append((*bp)[:0], control...)
	for _, f := range frames {
		b = c.w.appendFrame(b, f)
	}
	if beat {
		b = c.w.appendHeartbeat(b)
	}
	*bp = b
	return bp, b
}

// wrote accounts for a write of frames that ended with err.
func (c *conn) wrote(frames []*broker.Frame, err error) {
	if err != nil {
		c.broken = true
		c.kick(reasonWriteFailed)
		return
	}
	if len(frames) > 0 {
		c.srv.metrics.FramesWritten(c.transport, frames)
	}
}

// maxKeptQueue is the largest drained queue a connection keeps for reuse:
// a burst's worth is given back to the heap.
const maxKeptQueue = 16

// recycleLocked keeps done, a batch written, as the next queue. The caller
// holds c.mu.
func (c *conn) recycleLocked(done []*broker.Frame) {
	if done != nil && c.spare == nil && cap(done) <= maxKeptQueue {
		clear(done)
		c.spare = done[:0]
	}
}

// takeLocked removes up to maxFramesPerWrite frames from the front of the
// queue. The caller holds c.mu.
func (c *conn) takeLocked() []*broker.Frame {
	if len(c.pending) == 0 {
		return nil
	}
	if len(c.pending) <= maxFramesPerWrite {
		batch := c.pending
		c.pending, c.spare = c.spare, nil
		return batch
	}
	batch := slices.Clone(c.pending[:maxFramesPerWrite])
	n := copy(c.pending, c.pending[maxFramesPerWrite:])
	clear(c.pending[n:])
	c.pending = c.pending[:n]
	return batch
}

// finish ends the stream: it leaves the hub, tells the client why where
// the transport can, closes the connection and gives back what it held.
// The writer role runs it, once, and keeps the role for good.
func (c *conn) finish() {
	s := c.srv
	// Leave the hub before the last word: ending a stream to a peer that
	// stopped reading can take a write timeout, and it must not hold a
	// place in the fan-out meanwhile.
	if c.joined {
		s.hub.Unregister(c.id)
		s.metrics.ConnectionClosed(c.transport, c.reason)
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
			slog.String("transport", c.transport), slog.String("remote_addr", c.remote), slog.String("reason", c.reason))
	}
	c.release()
}

// frameWriter is what a transport makes of frames; the writer above is the
// same for SSE and WebSocket. Only the writer role calls it.
type frameWriter interface {
	// appendFrame appends f as the transport sends it.
	appendFrame(b []byte, f *broker.Frame) []byte
	// appendHeartbeat appends an SSE comment or a WebSocket ping.
	appendHeartbeat(b []byte) []byte
	// end tells the client why the stream ends, where the transport can.
	// It may wait (a write, a close handshake).
	end(reason string)
	// close releases the connection.
	close()
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

// stream starts c: it registers it and writes its catch-up (ready, then
// what it missed, or a reset). The caller holds the writer role and gives
// it up here, to the writers when frames arrived live meanwhile: when
// stream returns, a hijacked connection runs by itself, and one inside
// net/http is served by its handler's loop. ctx is the request's, used
// only while stream runs.
func (s *Server) stream(ctx context.Context, c *conn, p streamParams) {
	c.mu.Lock()
	failed := c.reason != "" // its response head could not be written
	c.mu.Unlock()
	if failed {
		c.yield(nil)
		return
	}
	start := p.cursor
	if !p.resume {
		// Read the head before registering: whatever is published in
		// between is replayed, whatever comes after arrives live.
		head, err := s.bus.Head(ctx)
		if err != nil {
			s.log.Error("stream: read head", slog.String("connection_id", c.id), slog.Any("error", err))
			c.kick(reasonReplayFailed)
			c.yield(nil)
			return
		}
		start = head
	}
	if err := s.hub.Register(c.id, c.userID, p.channels, c); err != nil {
		s.log.Error("stream: register", slog.String("connection_id", c.id), slog.Any("error", err))
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
	// CloseStreams kicks the connections the hub holds; one registering
	// after it looked sees that it was called.
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
	first, lastSeq, err := s.catchUp(ctx, c, p, start)
	if err != nil {
		s.log.Error("stream: replay", slog.String("connection_id", c.id), slog.Any("error", err))
		c.kick(reasonReplayFailed)
	} else {
		c.lastSeq = lastSeq
		// A long catch-up goes out in bounded pieces, each with its own
		// write deadline, so a big replay on a slow link still makes
		// progress.
		for chunk := range slices.Chunk(first, maxFramesPerWrite) {
			bp, b := c.encode(nil, chunk, false)
			_, err := c.out.Write(b)
			putBuffer(bp)
			c.wrote(chunk, err)
			if err != nil {
				break
			}
		}
	}
	c.yield(nil)
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

// errAborted is a write refused because a kick gave up on the peer.
var errAborted = errors.New("transport: write aborted: the stream is ending")

// sink is where a stream's bytes go: a hijacked socket (sock.go), or the
// response of a stream inside net/http (responseSink).
type sink interface {
	// Write sends b at once, under a deadline of its own: a hijacked
	// connection no longer has the server's WriteTimeout, and a stream
	// must not have it anyway (it would cut a long-lived stream
	// silently).
	io.Writer
	// tryWrite sends what can go out without waiting, and says how much
	// that was.
	tryWrite(b []byte) (int, error)
	// abort moves the deadline to now, releasing a Write in progress.
	abort()
}

// writeBuffers hold a write's frames while they are encoded: shared by all
// connections, since a connection writes now and then and holds no buffer
// between writes.
var writeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBuffer keeps a burst's big buffer from staying in the pool.
const maxPooledBuffer = 64 << 10

func putBuffer(bp *[]byte) {
	if cap(*bp) <= maxPooledBuffer {
		writeBuffers.Put(bp)
	}
}
