package transport

import (
	"sync"
	"sync/atomic"
	"time"

	"notification-service/auth"
	"notification-service/broker"
	"notification-service/pusher"
)

// conn is one live stream (SSE, WebSocket, ...) as the hub sees it: a
// bounded queue the hub fills without ever blocking, and a kick that ends
// the stream with a reason.
//
// Memory per connection is what limits how many a process holds, so a
// connection has no goroutine of its own to write with: whoever gives it
// work takes the writer role and hands it to the shared writers
// (writer.go). What differs between transports is behind framer (how
// frames look on the wire) and sink (where the bytes go); everything else
// is this one type.
type conn struct {
	id        string
	userID    string
	transport string
	remote    string
	// streams is the set of live streams this one belongs to: the hub,
	// the writers, the metrics and the audit trail it reports to.
	streams   *streams
	w         framer
	out       sink
	queueSize int

	// wake, when set, is how the writer role is handed to the handler
	// goroutine of a stream that stays inside net/http; nil for hijacked
	// connections, which the shared writers serve.
	wake chan struct{}
	// peerDone is closed when the goroutine reading the client's side of
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
	reason reason

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

var _ broker.Conn = (*conn)(nil)

// newConn returns a connection of p's user, named by a Pusher socket id
// (digits.digits, what Laravel's toOthers excludes), whose writer role is
// held by the caller, which starts the stream (streams.start) and so writes before
// anyone else.
func (s *streams) newConn(p streamParams, transport, remote string) *conn {
	return &conn{
		id: pusher.NewSocketID(), userID: p.userID, transport: transport, remote: remote, claims: p.claims,
		streams: s, queueSize: s.opts.QueueSize, writing: true, release: func() {},
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
		c.streams.metrics.FrameDropped()
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
	if c.w.awaitsPong() {
		if !c.pingSent.IsZero() {
			late := now.Sub(c.pingSent) >= c.streams.opts.PongTimeout
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
	late := !c.pingSent.IsZero() && now.Sub(c.pingSent) >= c.streams.opts.PongTimeout
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

// queued is how many frames wait in the connection's queue.
func (c *conn) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// kick ends the stream with r; the first reason given is the one that
// counts.
func (c *conn) kick(r reason) {
	c.mu.Lock()
	if c.reason != "" {
		c.mu.Unlock()
		return
	}
	c.reason = r
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		c.startWriter()
		return
	}
	// A writer is running, maybe blocked on a peer that stopped reading:
	// release it. At shutdown a healthy client's write is let finish, so
	// it still gets its reconnect hint; the write timeout bounds the rest.
	if r != reasonShutdown {
		c.aborted.Store(true)
		c.out.abort()
	}
}

// aside runs fn, a client frame's work, on a goroutine of its own and waits
// for it. The work of a frame (a subscribe's audit record, hub and bus
// calls) runs deeper than a 4 KiB stack, and a goroutine's stack, once
// grown, only shrinks when the collector finds a quarter of it in use:
// never for a reader idle in its read, which is deeper than 2 KiB. On the
// reader itself every connection that ever subscribed (the seed's client
// does in onopen; every Echo client does) would keep an 8 KiB stack for
// its whole life; aside, the deep stack goes back to the runtime when the
// frame is done. Client frames are few, so a goroutine each costs nothing
// that shows (docs/BENCHMARKS.md, "The Pusher protocol").
func aside(fn func()) {
	var frame sync.WaitGroup
	frame.Go(fn)
	frame.Wait()
}
