// Package transport is the HTTP face of the service: every route, the REST
// API, the SSE and WebSocket endpoints, and the middleware around them. It
// turns requests into calls on the broker, inbox and schedule packages and
// their results into JSON; it owns no state of its own beyond live
// connections' writers.
package transport

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"notification-service/audit"
	"notification-service/auth"
	"notification-service/broker"
	"notification-service/idempotency"
	"notification-service/inbox"
	"notification-service/schedule"
)

// Options are the transport's tunables, taken from configuration.
type Options struct {
	// Mode is reported by /health ("memory" or "redis").
	Mode string
	// HeartbeatInterval spaces SSE comments and WebSocket pings.
	HeartbeatInterval time.Duration
	// PongTimeout is how long a WebSocket peer has to answer a ping.
	PongTimeout time.Duration
	// WriteTimeout bounds one write to a stream.
	WriteTimeout time.Duration
	// MaxBodyBytes bounds REST bodies; MaxFrameBytes WebSocket messages.
	MaxBodyBytes  int64
	MaxFrameBytes int64
	// QueueSize is each connection's queue; overflowing it closes the
	// connection as a slow consumer.
	QueueSize int
	// MaxChannels bounds the channels of one connection or notification.
	MaxChannels int
	// MaxPageSize bounds inbox pages.
	MaxPageSize int
	// AllowedOrigins lists the origins allowed for WebSocket and CORS; "*"
	// allows any.
	AllowedOrigins []string
	// MaxJSONDepth bounds how deeply a JSON body or WebSocket frame may
	// nest objects and arrays (the outer object is level 1); 0 means
	// DefaultMaxJSONDepth.
	MaxJSONDepth int

	// Security (DESIGN §8; README "Security").
	//
	// JWTSecret turns token mode on: browsers present an HS256 token
	// signed with it, whose sub is the user. Empty is open mode (?user_id=
	// names the user). New panics on a secret shorter than
	// auth.MinSecretBytes; configuration refuses one first.
	JWTSecret []byte
	// TokenLeeway is the clock skew tolerated on a token's times.
	TokenLeeway time.Duration
	// APIKey, when set, is required on the backend endpoints and opens any
	// user's inbox.
	APIKey string
	// AuthCookie names the cookie a browser's token may come in.
	AuthCookie string
	// MaxConnectionsPerUser bounds one user's live streams on this
	// instance; 0 is no bound.
	MaxConnectionsPerUser int
	// Rates bound connects and sends; a zero Rate is no limit.
	Rates RateLimits
	// TrustForwardedFor keys the per-address rates on the first
	// X-Forwarded-For hop instead of the peer's address: only behind a
	// proxy that sets that header itself.
	TrustForwardedFor bool
}

// DefaultMaxJSONDepth is the nesting bound when Options.MaxJSONDepth is 0.
const DefaultMaxJSONDepth = 32

// Deps are the components the transport calls.
type Deps struct {
	Hub         *broker.Hub
	Bus         broker.Bus
	Inbox       inbox.Store
	Scheduler   schedule.Scheduler
	Idempotency idempotency.Store
	Audit       audit.Log
	Logger      *slog.Logger
	// Check says whether the shared store is reachable; /health answers
	// 503 "degraded" while it fails. Nil in memory mode.
	Check func(context.Context) error
	// Metrics is told of connections, deliveries, sends and fires, and
	// serves GET /metrics; nil reports to nobody.
	Metrics Metrics
	// Assets holds the browser client (clients/js/client.js, client.d.ts)
	// and the demo page (web/index.html), served at /client.js,
	// /client.d.ts and /; nil serves none of them.
	Assets fs.FS
}

// Server serves the HTTP API and the streams.
type Server struct {
	opts    Options
	hub     *broker.Hub
	bus     broker.Bus
	inbox   inbox.Store
	sched   schedule.Scheduler
	idem    idempotency.Store
	audit   audit.Log
	log     *slog.Logger
	check   func(context.Context) error
	metrics Metrics
	assets  fs.FS
	started time.Time

	// tokens verifies browsers' tokens; nil in open mode.
	tokens *auth.Verifier
	apiKey auth.Key
	// expiry ends streams whose token expires; Run owns its timer.
	expiry *expiryQueue
	slots  *userSlots

	connectsPerAddr, connectsPerUser *limiterSet
	sendsPerAddr, sendsPerUser       *limiterSet

	// writers write to hijacked connections (writers.go).
	writers *writers

	shuttingDown chan struct{}

	// streamsMu guards the count of live hijacked connections (WebSocket,
	// and SSE over HTTP/1.1): http.Server.Shutdown does not wait for them
	// (it does wait for SSE handlers over HTTP/2), so the owner waits for
	// drained instead. (A WaitGroup would forbid a stream starting while
	// the owner already waits.)
	streamsMu sync.Mutex
	streams   int
	closing   bool
	drained   chan struct{}
}

// New returns a Server. Call Run to start its heartbeat ticker and token
// expiry.
func New(d Deps, opts Options) *Server {
	if opts.PongTimeout <= 0 {
		opts.PongTimeout = min(opts.HeartbeatInterval, 10*time.Second)
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.MaxJSONDepth <= 0 {
		opts.MaxJSONDepth = DefaultMaxJSONDepth
	}
	s := &Server{
		opts: opts, hub: d.Hub, bus: d.Bus, inbox: d.Inbox, sched: d.Scheduler, idem: d.Idempotency,
		audit: d.Audit, log: d.Logger, check: d.Check, metrics: d.Metrics, assets: d.Assets, started: time.Now(),
		apiKey:          auth.NewKey(opts.APIKey),
		expiry:          newExpiryQueue(),
		slots:           newUserSlots(opts.MaxConnectionsPerUser),
		connectsPerAddr: newLimiterSet(opts.Rates.ConnectsPerAddr, maxRateKeys),
		connectsPerUser: newLimiterSet(opts.Rates.ConnectsPerUser, maxRateKeys),
		sendsPerAddr:    newLimiterSet(opts.Rates.SendsPerAddr, maxRateKeys),
		sendsPerUser:    newLimiterSet(opts.Rates.SendsPerUser, maxRateKeys),
		writers:         newWriters(),
		shuttingDown:    make(chan struct{}),
		drained:         make(chan struct{}),
	}
	if len(opts.JWTSecret) > 0 {
		v, err := auth.NewVerifier(opts.JWTSecret, opts.TokenLeeway, idPattern.MatchString)
		if err != nil {
			panic("transport: " + err.Error())
		}
		s.tokens = v
	}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}
	return s
}

// Run drives the one heartbeat ticker shared by every connection, the one
// timer that closes WebSocket peers that left a ping unanswered, and the
// one timer that ends streams whose token expires, until ctx ends: no
// connection has a timer of its own.
func (s *Server) Run(ctx context.Context) error {
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
	expireDue() // streams may have registered before Run started
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.expiry.wake:
			expireDue()
		case <-expire.C:
			expireDue()
		case now := <-t.C:
			s.hub.Each(func(c broker.Conn) {
				if c, ok := c.(*conn); ok {
					c.heartbeat(now)
				}
			})
			if s.opts.PongTimeout < s.opts.HeartbeatInterval {
				pongs.Reset(s.opts.PongTimeout)
			}
		case now := <-pongs.C:
			s.hub.Each(func(c broker.Conn) {
				if c, ok := c.(*conn); ok {
					c.checkPong(now)
				}
			})
		}
	}
}

// CloseStreams tells every live stream to end with a reconnect hint (SSE: a
// last event; WebSocket: close 1012). Register it with
// http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() {
	s.streamsMu.Lock()
	if s.closing {
		s.streamsMu.Unlock()
		return
	}
	s.closing = true
	close(s.shuttingDown)
	if s.streams == 0 {
		close(s.drained)
	}
	s.streamsMu.Unlock()
	// A stream registering after this looks at shuttingDown itself.
	s.hub.Each(func(c broker.Conn) {
		if c, ok := c.(*conn); ok {
			c.kick(reasonShutdown)
		}
	})
}

// streamStarted counts a hijacked connection in; false means the server is
// closing and the connection must not start.
func (s *Server) streamStarted() bool {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.closing {
		return false
	}
	s.streams++
	return true
}

func (s *Server) streamEnded() {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	s.streams--
	if s.closing && s.streams == 0 {
		close(s.drained)
	}
}

// WaitStreams waits, after CloseStreams, until every hijacked connection
// (WebSocket, and SSE over HTTP/1.1) has ended, or ctx ends; then for the
// shared writers to return.
func (s *Server) WaitStreams(ctx context.Context) error {
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

// Fire publishes a scheduled item that has come due: the scheduler's
// FireFunc.
func (s *Server) Fire(ctx context.Context, it schedule.Item) error {
	// Lateness is the scheduler's: from the time asked for to this call.
	lateness := time.Since(it.ScheduledAt)
	ns := make([]broker.Notification, len(it.Notifications))
	now := broker.Now()
	for i, n := range it.Notifications {
		n.Timestamp = now
		ns[i] = n
	}
	if _, err := s.bus.Publish(ctx, ns...); err != nil {
		return fmt.Errorf("transport: fire %s: %w", it.ID, err)
	}
	s.audit.Record("fire", slog.String("schedule_id", it.ID), slog.Any("user_ids", it.UserIDs()),
		slog.Any("channels", ns[0].Channels), slog.Time("scheduled_at", it.ScheduledAt),
		slog.Duration("lateness", lateness))
	s.metrics.ScheduleFired(lateness)
	return nil
}
