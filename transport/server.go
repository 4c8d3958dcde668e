// Package transport is the HTTP face of the service: every route, the REST
// API, the SSE and WebSocket endpoints, and the middleware around them. It
// turns requests into calls on the broker, inbox and schedule packages and
// their results into JSON; it owns no state of its own beyond live
// connections' writers.
package transport

import (
	"context"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"notification-service/audit"
	"notification-service/auth"
	"notification-service/broker"
	"notification-service/idempotency"
	"notification-service/inbox"
	"notification-service/laravel"
	"notification-service/presence"
	"notification-service/publish"
	"notification-service/pusher"
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
	// MaxPageSize bounds the limit of an inbox page and of a schedules page
	// (INBOX_MAX_PAGE_SIZE sets both).
	MaxPageSize int
	// AllowedOrigins lists the origins allowed for WebSocket and CORS; "*"
	// allows any.
	AllowedOrigins []string
	// MaxJSONDepth bounds how deeply a JSON body or WebSocket frame may
	// nest objects and arrays (the outer object is level 1); 0 means
	// DefaultMaxJSONDepth.
	MaxJSONDepth int

	// Security (docs/ARCHITECTURE.md#security-and-hostile-input; README "Security").
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
	// PusherApp, when set, serves Pusher's HTTP API (Laravel's pusher
	// and reverb broadcasters) for this app; nil answers 404.
	PusherApp *pusher.App
	// PusherTimestampWindow is how far a signed request's auth_timestamp
	// may be from now (0: pusher.DefaultTimestampWindow).
	PusherTimestampWindow time.Duration
	// PusherEventLimits bound the HTTP API's bodies.
	PusherEventLimits pusher.EventLimits
	// PusherClientEventRate bounds each Pusher connection's client events
	// (Echo's whisper), per second with as much burst; 0 means 10, Pusher's
	// own bound.
	PusherClientEventRate float64
	// Mapping turns Laravel's broadcasts into notifications.
	Mapping laravel.Mapping

	// TrustForwardedFor keys the per-address rates on the first
	// X-Forwarded-For hop instead of the peer's address: only behind a
	// proxy that sets that header itself.
	TrustForwardedFor bool
}

// DefaultMaxJSONDepth is the nesting bound when Options.MaxJSONDepth is 0.
const DefaultMaxJSONDepth = 32

// Deps are the components the transport calls.
type Deps struct {
	Hub *broker.Hub
	// Bus carries the streams' catch-up and subscriptions and the inbox's
	// pushes to live connections; notifications are published through
	// Publisher, which wraps the same bus.
	Bus         broker.Bus
	Publisher   *publish.Publisher
	Inbox       inbox.Store
	Scheduler   schedule.Scheduler
	Idempotency idempotency.Store
	// Presence holds the members of Pusher presence channels; nil keeps
	// one in memory (a single instance).
	Presence presence.Store
	Audit    audit.Log
	Logger   *slog.Logger
	// Check says whether the shared store is reachable; /health answers
	// 503 "degraded" while it fails. Nil in memory mode.
	Check func(context.Context) error
	// Metrics is told of connections, deliveries, sends and fires, and
	// serves GET /metrics; nil reports to nobody.
	Metrics Metrics
	// Assets holds the browser client (clients/js/client.js, client.d.ts),
	// the demo page (web/index.html), the dashboard (web/dashboard.html,
	// .js, .css) and the API's description (docs/openapi.yaml), served at
	// /client.js, /client.d.ts, /, /dashboard and /openapi.yaml; nil
	// serves none of them.
	Assets fs.FS
	// Monitoring feeds the dashboard and the analytics API, and is told
	// of reads; its zero value enables neither.
	Monitoring Monitoring
}

// Server serves the HTTP API and the streams.
type Server struct {
	opts    Options
	audit   audit.Log
	logger  *slog.Logger
	metrics Metrics
	check   func(context.Context) error
	assets  fs.FS
	started time.Time

	// What the REST resources call.
	bus       broker.Bus
	publisher *publish.Publisher
	inbox     inbox.Store
	sched     schedule.Scheduler
	idem      idempotency.Store
	presence  presence.Store

	// Who may call what (auth.go) and how often (limits.go). tokens
	// verifies browsers' tokens; nil in open mode.
	tokens *auth.Verifier
	apiKey auth.Key
	rates  rateLimiters

	// streams are the live connections and their life (streams.go).
	streams *streams
	// unavailable paces the log of requests refused while the store is
	// away.
	unavailable everySecond

	// The dashboard's and the analytics' sources (monitoring.go), and the
	// stats answer every viewer shares (dashboard.go).
	monitoring Monitoring
	statsCache statsCache
	// auditTail reads the trail for the audit streams (audit_stream.go);
	// nil without a trail.
	auditTail *auditTailer
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
	if opts.PusherClientEventRate <= 0 {
		opts.PusherClientEventRate = 10
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	if d.Presence == nil {
		d.Presence = presence.NewMemory(presence.DefaultMaxMembers)
	}
	if d.Monitoring.Reads == nil {
		d.Monitoring.Reads = noReads{}
	}
	if d.Publisher == nil {
		d.Publisher = publish.New(d.Bus, d.Audit, d.Metrics)
	}
	s := &Server{
		opts: opts, audit: d.Audit, logger: d.Logger, metrics: d.Metrics, check: d.Check, assets: d.Assets, started: time.Now(),
		bus: d.Bus, publisher: d.Publisher, inbox: d.Inbox, sched: d.Scheduler, idem: d.Idempotency, presence: d.Presence,
		monitoring: d.Monitoring,
		apiKey:     auth.NewKey(opts.APIKey),
		rates:      newRateLimiters(opts.Rates),
		streams:    newStreams(d, opts),
	}
	if d.Monitoring.Trail != nil {
		s.auditTail = newAuditTailer(d.Monitoring.Trail, d.Logger)
	}
	if len(opts.JWTSecret) > 0 {
		v, err := auth.NewVerifier(opts.JWTSecret, opts.TokenLeeway, idPattern.MatchString)
		if err != nil {
			panic("transport: " + err.Error())
		}
		s.tokens = v
	}
	return s
}

// Run drives the one heartbeat ticker shared by every connection, the one
// timer that closes WebSocket peers that left a ping unanswered, the one
// timer that ends streams whose token expires, and the one reader of the
// audit trail for every audit stream, until ctx ends: no connection has a
// timer of its own. Audit streams wait for Run and end when it returns.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.streams.run(ctx) })
	if s.auditTail != nil {
		wg.Go(func() { s.auditTail.run(ctx) })
	}
	// Presence members of instances that died (or of this one, when it
	// stops) leave through here; this one's Pusher connections join again
	// when it was taken for dead.
	err := s.presence.Run(ctx, presence.Events{Removed: s.memberGone, Lapsed: s.presenceLapsed})
	wg.Wait()
	return err
}

// CloseStreams tells every live stream to end with a reconnect hint (SSE: a
// last event; WebSocket: close 1012; an audit stream just ends). Register
// it with http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() {
	s.streams.closeAll()
	if s.auditTail != nil {
		s.auditTail.closeAll()
	}
}

// WaitStreams waits, after CloseStreams, until every hijacked connection
// (WebSocket, and SSE over HTTP/1.1) has ended, or ctx ends; then for the
// shared writers to return.
func (s *Server) WaitStreams(ctx context.Context) error { return s.streams.wait(ctx) }

// QueueDepth walks the live connections at scrape time: the frames waiting
// in all their queues, and in the fullest one. It costs the delivery path
// nothing, and a scrape no more than a heartbeat tick.
func (s *Server) QueueDepth() (total, fullest int) { return s.streams.queueDepth() }
