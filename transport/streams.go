package transport

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"notification-service/audit"
	"notification-service/broker"
)

// streams is every live stream of a server, whatever its transport, and
// their common life: the hub they are delivered through, the shared
// writers, the heartbeat and token-expiry timers (one of each for all of
// them, none per connection), and the shutdown that ends them. A
// connection reaches the rest of the service only through it.
type streams struct {
	opts    Options
	hub     *broker.Hub
	bus     broker.Bus
	writers *writers
	expiry  *expiryQueue
	slots   *userSlots
	metrics Metrics
	audit   audit.Log
	logger  *slog.Logger

	shuttingDown chan struct{}

	// mu guards the count of live hijacked connections (WebSocket, and
	// SSE over HTTP/1.1): http.Server.Shutdown does not wait for them (it
	// does wait for SSE handlers over HTTP/2), so the owner waits for
	// drained instead. (A WaitGroup would forbid a stream starting while
	// the owner already waits.)
	mu      sync.Mutex
	count   int
	closing bool
	drained chan struct{}
}

func newStreams(d Deps, opts Options) *streams {
	return &streams{
		opts: opts, hub: d.Hub, bus: d.Bus, metrics: d.Metrics, audit: d.Audit, logger: d.Logger,
		writers:      newWriters(),
		expiry:       newExpiryQueue(),
		slots:        newUserSlots(opts.MaxConnectionsPerUser),
		shuttingDown: make(chan struct{}),
		drained:      make(chan struct{}),
	}
}

// each calls fn for every live connection of this server. fn must not
// block or call back into the hub.
func (s *streams) each(fn func(*conn)) {
	s.hub.Each(func(bc broker.Conn) {
		// The cast stays: the hub stores broker.Conn so broker need not know
		// transport, and here it only ever holds *conn (stream.go registers).
		if c, ok := bc.(*conn); ok {
			fn(c)
		}
	})
}

// run drives the one heartbeat ticker shared by every connection, the one
// timer that closes WebSocket peers that left a ping unanswered, and the
// one timer that ends streams whose token expires, until ctx ends.
func (s *streams) run(ctx context.Context) {
	t := time.NewTicker(s.opts.HeartbeatInterval)
	defer t.Stop()
	// Each heartbeat checks the pongs of the one before; when PongTimeout
	// is shorter than the interval, pongs is a check in between.
	pongs := time.NewTimer(time.Hour)
	pongs.Stop()
	defer pongs.Stop()
	expire := time.NewTimer(time.Hour)
	expire.Stop()
	defer expire.Stop()
	// expireDue ends the streams whose deadline has come and sets the
	// timer for the next one.
	expireDue := func() {
		due, next := s.expiry.popDue(time.Now())
		for _, c := range due {
			c.kick(reasonTokenExpired)
		}
		if next.IsZero() {
			expire.Stop()
		} else {
			expire.Reset(time.Until(next))
		}
	}
	expireDue() // streams may have registered before run started
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.expiry.wake:
			expireDue()
		case <-expire.C:
			expireDue()
		case now := <-t.C:
			s.each(func(c *conn) { c.heartbeat(now) })
			if s.opts.PongTimeout < s.opts.HeartbeatInterval {
				pongs.Reset(s.opts.PongTimeout)
			}
		case now := <-pongs.C:
			s.each(func(c *conn) { c.checkPong(now) })
		}
	}
}

// closeAll tells every live stream to end with a reconnect hint.
func (s *streams) closeAll() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	close(s.shuttingDown)
	if s.count == 0 {
		close(s.drained)
	}
	s.mu.Unlock()
	// A stream registering after this looks at shuttingDown itself.
	s.each(func(c *conn) { c.kick(reasonShutdown) })
}

// started counts a hijacked connection in; false means the server is
// closing and the connection must not start.
func (s *streams) started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.count++
	return true
}

func (s *streams) ended() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count--
	if s.closing && s.count == 0 {
		close(s.drained)
	}
}

// wait waits, after closeAll, until every hijacked connection has ended,
// or ctx ends; then for the shared writers to return.
func (s *streams) wait(ctx context.Context) error {
	select {
	case <-s.drained:
	case <-ctx.Done():
		// select picks at random when both are ready: drained streams with
		// an expired ctx (Shutdown spent it) are still drained.
		select {
		case <-s.drained:
		default:
			return fmt.Errorf("transport: %d connections still open: %w", s.hub.Len(), ctx.Err())
		}
	}
	// With every stream ended nobody gives the writers work, and they
	// never wait on a socket: they return within moments, even when
	// Shutdown has spent ctx.
	return s.writers.wait(context.WithoutCancel(ctx))
}

// queueDepth walks the live connections: the frames waiting in all their
// queues, and in the fullest one.
func (s *streams) queueDepth() (total, fullest int) {
	s.each(func(c *conn) {
		n := c.queued()
		total += n
		fullest = max(fullest, n)
	})
	return total, fullest
}
