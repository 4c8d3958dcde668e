// Command notification-service is a real-time notification server: a
// backend sends notifications over REST, browsers receive them over SSE or
// WebSocket and read their inbox over REST. main only reads configuration,
// wires the packages together and runs them until a signal.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"

	"notification-service/audit"
	"notification-service/auth"
	"notification-service/broker"
	"notification-service/internal/version"
	"notification-service/metrics"
	"notification-service/publish"
	"notification-service/transport"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "version" || os.Args[1] == "-version" || os.Args[1] == "--version") {
		b := version.Current()
		fmt.Printf("notification-service %s (revision %s, %s)\n", b.Version, b.Revision, b.GoVersion)
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(context.Background(), env.ToMap(os.Environ()), os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal starts the graceful shutdown, a second one
	// ends the process at once.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, env.ToMap(os.Environ()), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "notification-service:", err)
		os.Exit(1)
	}
}

// run reads the configuration, listens on PORT and serves until ctx ends.
func run(ctx context.Context, environ map[string]string, stdout io.Writer) error {
	cfg, err := loadConfig(environ)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return fmt.Errorf("listen on PORT=%d: %w", cfg.Port, err)
	}
	return serve(ctx, cfg, newLogger(cfg, stdout), ln)
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	level, _ := cfg.logLevel() // validated by loadConfig
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve wires the service on ln and runs it until ctx ends, then shuts down
// in order: stop accepting, end streams with a reconnect hint, finish
// in-flight requests, and only then stop the scheduler, so a request
// accepted during the drain is still stored and published.
func serve(ctx context.Context, cfg config, logger *slog.Logger, ln net.Listener) error {
	hub := broker.NewHub(cfg.MaxChannels)
	m := metrics.New()
	// The delivery callback needs the audit trail and the analytics, which
	// need the backend's store: both are set below, before the bus runs or
	// anything is published, so no delivery comes before them.
	var (
		auditLog audit.Log
		mon      monitoring
	)
	back, err := newBackend(ctx, cfg, logger, hub, m, func(n broker.Notification, reached int) {
		auditLog.Record("delivery", slog.String("notification_id", n.ID), slog.String("user_id", n.UserID),
			slog.String("type", n.Type), slog.Any("channels", n.Channels), slog.Int("connections", reached))
		mon.recorder.Delivered(n, reached)
	})
	if err != nil {
		return err
	}
	defer back.close()
	mon = newMonitoring(cfg, back, m, logger)
	auditLog = audit.New(logger, mon.trail)
	publisher := publish.New(back.bus, auditLog, m, mon.recorder)
	server := transport.New(transport.Deps{
		Hub: hub, Bus: back.bus, Publisher: publisher, Inbox: back.inbox, Scheduler: back.scheduler,
		Idempotency: back.idem, Presence: back.presence, Audit: auditLog, Logger: logger, Check: back.check, Metrics: m,
		Assets: assets, Monitoring: mon.deps,
	}, transport.Options{
		Mode:              back.mode,
		HeartbeatInterval: cfg.HeartbeatInterval,
		PongTimeout:       cfg.PongTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		MaxBodyBytes:      cfg.MaxBodyBytes,
		MaxFrameBytes:     cfg.MaxFrameBytes,
		QueueSize:         cfg.ClientQueueSize,
		MaxChannels:       cfg.MaxChannels,
		MaxPageSize:       cfg.InboxMaxPageSize,
		AllowedOrigins:    cfg.AllowedOrigins,
		MaxJSONDepth:      cfg.MaxJSONDepth,
		// Security: README "Security".
		JWTSecret:             []byte(cfg.JWTSecret),
		TokenLeeway:           auth.DefaultLeeway,
		APIKey:                string(cfg.APIKey),
		AuthCookie:            cfg.AuthCookie,
		MaxConnectionsPerUser: cfg.MaxConnectionsPerUser,
		Rates:                 cfg.rates(),
		TrustForwardedFor:     cfg.TrustForwardedFor,
		// Laravel: README "Laravel".
		PusherApp:             cfg.pusherApp(),
		PusherTimestampWindow: cfg.PusherTimestampWindow,
		Mapping:               cfg.mapping(),
	})

	tlsConfig, err := cfg.tlsConfig(logger)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:   server.Handler(),
		Protocols: cfg.protocols(),
		TLSConfig: tlsConfig,
		// A client trickling its headers (slowloris) is cut off, and one
		// sending too many gets 431 (net/http answers both before any
		// handler runs, in plain text).
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		// Streams clear this deadline for themselves; REST requests keep it.
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  cfg.IdleTimeout,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	m.WatchQueues(server.QueueDepth)
	m.WatchScheduled(back.pending)
	srv.RegisterOnShutdown(server.CloseStreams)
	fresh := trackFreshConns(srv)
	srv.RegisterOnShutdown(fresh.closeAll)

	var ingester *laravelIngester
	if cfg.LaravelRedisPrefix != "" {
		if ingester, err = newLaravelIngester(cfg, logger, back.client, publisher, m); err != nil {
			return err
		}
		defer ingester.close()
	}

	// The components outlive the HTTP drain: they stop only after it.
	componentsCtx, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
	defer stopComponents()
	var components sync.WaitGroup
	components.Go(func() { _ = server.Run(componentsCtx) })
	components.Go(func() { _ = back.scheduler.Run(componentsCtx, publisher.Fire) })
	mon.run(componentsCtx, &components)
	if back.run != nil {
		components.Go(func() { _ = back.run(componentsCtx) })
	}
	if ingester != nil {
		components.Go(func() { _ = ingester.Run(componentsCtx) })
	}
	if cfg.DebugPprofAddr != "" {
		components.Go(func() {
			if err := servePprof(componentsCtx, cfg.DebugPprofAddr, logger); err != nil {
				logger.Error("profiles not served", slog.Any("error", err))
			}
		})
	}

	serveErr := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			serveErr <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	logger.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("mode", back.mode),
		slog.String("version", version.Current().Version),
		slog.Bool("tls", tlsConfig != nil), slog.Bool("h2c", cfg.HTTP2Cleartext))
	warnOpenAccess(logger, cfg)
	if back.mode == "memory" {
		logger.Warn("memory mode: inbox, history and pending schedules live in this process and are lost on restart; set REDIS_URL to share them between instances and keep them")
	}

	serving := true
	select {
	case <-ctx.Done():
		logger.Info("shutting down", slog.Duration("timeout", cfg.ShutdownTimeout))
	case serveFailed := <-serveErr:
		serving = false
		err = fmt.Errorf("serve: %w", serveFailed)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if shutdownErr := srv.Shutdown(shutdownCtx); shutdownErr != nil {
		err = errors.Join(err, fmt.Errorf("http shutdown: %w", shutdownErr))
		// The budget is spent: close what is left (a connection that never
		// sent a request holds Shutdown for 5s) rather than leave it open.
		_ = srv.Close()
	}
	server.CloseStreams() // Shutdown runs its hooks in goroutines; make sure it ran.
	if waitErr := server.WaitStreams(shutdownCtx); waitErr != nil {
		err = errors.Join(err, waitErr)
	}
	stopComponents()
	components.Wait()
	if serving {
		if serveFailed := <-serveErr; !errors.Is(serveFailed, http.ErrServerClosed) {
			err = errors.Join(err, fmt.Errorf("serve: %w", serveFailed))
		}
	}
	logger.Info("stopped")
	return err
}

// freshConns are connections that have not sent a request yet.
// http.Server.Shutdown leaves such a connection open for 5 s before it counts
// as idle (a browser or an HTTP client often opens one ahead of need), which
// would hold every shutdown that long; with no request on it, closing it at
// once loses nothing.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func trackFreshConns(srv *http.Server) *freshConns {
	f := &freshConns{conns: make(map[net.Conn]struct{})}
	srv.ConnState = func(c net.Conn, state http.ConnState) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if state == http.StateNew {
			f.conns[c] = struct{}{}
		} else {
			delete(f.conns, c)
		}
	}
	return f
}

func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
	clear(f.conns)
}
