package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"notification-service/analytics"
	"notification-service/audit"
	"notification-service/broker"
	"notification-service/idempotency"
	"notification-service/inbox"
	"notification-service/instances"
	"notification-service/internal/streamtest"
	"notification-service/metrics"
	"notification-service/presence"
	"notification-service/publish"
	"notification-service/schedule"
	"notification-service/transport"
)

// waitTimeout bounds every wait for an event; tests never sleep to hope.
const waitTimeout = streamtest.WaitTimeout

// testServer is the whole service in memory behind a real HTTP server.
type testServer struct {
	*httptest.Server
	Transport *transport.Server
	Hub       *broker.Hub
	Bus       *broker.Memory
	Inbox     *inbox.Memory
	Scheduler *schedule.Memory
	Logs      *logBuffer
	// Monitoring is set on a monitored server.
	Monitoring *testMonitoring
}

func defaultOptions() transport.Options {
	return transport.Options{
		Mode:              "memory",
		HeartbeatInterval: time.Hour,
		PongTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		MaxBodyBytes:      64 << 10,
		MaxFrameBytes:     16 << 10,
		QueueSize:         256,
		MaxChannels:       100,
		MaxPageSize:       200,
		AllowedOrigins:    []string{"*"},
	}
}

// testConfig is how a test server is made: the transport's options, the
// stores' limits, and what a test needs to see or hold (the bus, how the
// HTTP server starts, the service's real metrics). Tweaks change it.
type testConfig struct {
	transport.Options
	Inbox   inbox.Limits
	History broker.HistoryLimits
	// Schedule bounds the pending schedules; zero is no bound.
	Schedule schedule.Limits
	// WrapBus wraps the bus the transport sees, to observe or hold back
	// its calls; nil leaves it alone.
	WrapBus func(broker.Bus) broker.Bus
	// Start starts the HTTP server (StartTLS with HTTP/2, say); nil is
	// Start.
	Start func(*httptest.Server)
	// Metrics wires the service's metrics as main does.
	Metrics bool
	// Presence holds the Pusher presence channels' members; nil is the
	// transport's default (in memory, Pusher's bound of 100 members).
	Presence presence.Store
	// Monitoring wires the dashboard and the analytics as main does in
	// memory mode (implies Metrics).
	Monitoring bool
}

// monitored is the tweak that wires the dashboard and the analytics.
func monitored(c *testConfig) { c.Monitoring, c.Metrics = true, true }

// testMonitoring is what a monitored test server runs and a test may
// flush by hand.
type testMonitoring struct {
	Analytics *analytics.Memory
	Recorder  *analytics.Recorder
	Trail     *audit.Trail
	Self      *instances.Self
	Registry  *countingRegistry
}

// countingRegistry counts the lists the dashboard's stats make.
type countingRegistry struct {
	instances.Registry
	lists atomic.Int64
}

func (r *countingRegistry) List(ctx context.Context) ([]instances.Report, error) {
	r.lists.Add(1)
	return r.Registry.List(ctx)
}

// wrapBus is the tweak that wraps the bus the transport sees.
func wrapBus(wrap func(broker.Bus) broker.Bus) func(*testConfig) {
	return func(c *testConfig) { c.WrapBus = wrap }
}

// newTestServer starts the service; each tweak adjusts its config.
func newTestServer(t testing.TB, tweaks ...func(*testConfig)) *testServer {
	t.Helper()
	cfg := testConfig{
		Options: defaultOptions(),
		Inbox:   inbox.Limits{MaxPerUser: 1000, MaxAge: 24 * time.Hour},
		History: broker.HistoryLimits{MaxPerChannel: 1000, MaxAge: 24 * time.Hour},
		Start:   (*httptest.Server).Start,
	}
	for _, tweak := range tweaks {
		if tweak != nil {
			tweak(&cfg)
		}
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var m *metrics.Metrics
	var tm transport.Metrics
	var pm publish.Metrics
	if cfg.Metrics {
		m = metrics.New()
		tm, pm = m, m
	}
	var mon *testMonitoring
	var deps transport.Monitoring
	var observers []publish.Observer
	auditLog := audit.New(logger)
	if cfg.Monitoring {
		mon = &testMonitoring{Analytics: analytics.NewMemory(analytics.Limits{})}
		mon.Recorder = analytics.NewRecorder(mon.Analytics, analytics.RecorderOptions{FlushEvery: 50 * time.Millisecond})
		trail := audit.NewMemoryTrail(100)
		mon.Trail = audit.NewTrail(trail, audit.TrailOptions{Instance: "test", FlushEvery: 50 * time.Millisecond})
		registry := &countingRegistry{Registry: instances.NewMemory(time.Minute)}
		mon.Registry = registry
		mon.Self = instances.NewSelf(registry, instances.SelfOptions{ID: "test", Version: "v-test", Heartbeat: 50 * time.Millisecond,
			Sample: func() instances.Sample { return instances.Sample(m.Snapshot()) }})
		deps = transport.Monitoring{Analytics: mon.Analytics, RetentionDays: 30, Reads: mon.Recorder,
			Instances: registry, Self: "test", Trail: trail}
		observers = append(observers, mon.Recorder)
		auditLog = audit.New(logger, mon.Trail)
	}
	hub := broker.NewHub(cfg.MaxChannels)
	store := inbox.NewMemory(cfg.Inbox)
	bus := broker.NewMemory(hub, store, cfg.History, func(n broker.Notification, reached int) {
		auditLog.Record("delivery", slog.String("notification_id", n.ID), slog.String("user_id", n.UserID),
			slog.String("type", n.Type), slog.Any("channels", n.Channels), slog.Int("connections", reached))
		if mon != nil {
			mon.Recorder.Delivered(n, reached)
		}
	})
	sched := schedule.NewMemory(logger, cfg.Schedule)
	var seen broker.Bus = bus
	if cfg.WrapBus != nil {
		seen = cfg.WrapBus(bus)
	}
	publisher := publish.New(seen, auditLog, pm, observers...)
	srv := transport.New(transport.Deps{
		Hub: hub, Bus: seen, Publisher: publisher, Inbox: store, Scheduler: sched,
		Idempotency: idempotency.NewMemory(idempotency.Limits{TTL: time.Hour}), Audit: auditLog, Logger: logger, Metrics: tm,
		Presence: cfg.Presence, Monitoring: deps,
	}, cfg.Options)
	if m != nil {
		m.WatchQueues(srv.QueueDepth)
		m.WatchScheduled(sched.Pending)
	}
	ts := &testServer{Transport: srv, Hub: hub, Bus: bus, Inbox: store, Scheduler: sched, Logs: logs, Monitoring: mon}
	ts.Server = httptest.NewUnstartedServer(srv.Handler())
	ts.Config.RegisterOnShutdown(srv.CloseStreams)
	cfg.Start(ts.Server)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Run(ctx) })
	wg.Go(func() { _ = sched.Run(ctx, publisher.Fire) })
	if mon != nil {
		wg.Go(func() { _ = mon.Recorder.Run(ctx) })
		wg.Go(func() { _ = mon.Trail.Run(ctx) })
		wg.Go(func() { _ = mon.Self.Run(ctx) })
	}
	t.Cleanup(func() {
		srv.CloseStreams()
		ts.Close()
		cancel()
		wg.Wait()
	})
	return ts
}

// logBuffer collects log lines safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// text is everything logged so far.
func (b *logBuffer) text() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Records returns the audit records with the given action.
func (b *logBuffer) Records(action string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(b.buf.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == "audit" && m["action"] == action {
			out = append(out, m)
		}
	}
	return out
}

// do sends a request with a JSON body (nil: none) and decodes the JSON
// answer into a map (nil when the answer has no body).
func (ts *testServer) do(t *testing.T, method, path string, body any, headers ...string) (int, map[string]any, http.Header) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, raw)
		}
	}
	return resp.StatusCode, m, resp.Header
}

// send posts a notification and returns its id.
func (ts *testServer) send(t *testing.T, body map[string]any) string {
	t.Helper()
	status, resp, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/send", body)
	if status != http.StatusCreated {
		t.Fatalf("send: status %d: %v", status, resp)
	}
	return resp["id"].(string)
}

// The real clients the tests connect with, under the names the tests use;
// both are a streamtest.Stream.
type (
	sseClient = streamtest.SSE
	wsClient  = streamtest.WS
)

// dialSSE opens /sse with the query and headers given.
func (ts *testServer) dialSSE(t *testing.T, query string, headers ...string) *sseClient {
	t.Helper()
	return streamtest.DialSSE(t, ts.Client(), ts.URL+"/sse?"+query, headers...)
}

// dialSSENoRead opens /sse without reading the body until StartReading: a
// client that stopped reading.
func (ts *testServer) dialSSENoRead(t *testing.T, query string, headers ...string) *sseClient {
	t.Helper()
	return streamtest.DialSSENoRead(t, ts.Client(), ts.URL+"/sse?"+query, headers...)
}

// dialWS opens /ws with the query given and starts reading.
func (ts *testServer) dialWS(t *testing.T, query string) *wsClient {
	t.Helper()
	return streamtest.DialWS(t, ts.wsURL(query))
}

// dialWSNoRead opens /ws without reading, so pings go unanswered and frames
// pile up: a dead or slow peer.
func (ts *testServer) dialWSNoRead(t *testing.T, query string) *wsClient {
	t.Helper()
	return streamtest.DialWSNoRead(t, ts.wsURL(query))
}

func (ts *testServer) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws?" + query
}

// dialStream opens a stream, for a test that runs over every transport.
// kind is "sse" (resuming with the Last-Event-ID header), "sse-query"
// (resuming with ?last_event_id=) or "ws"; cursor "" starts fresh.
func (ts *testServer) dialStream(t *testing.T, kind, q, cursor string) streamtest.Stream {
	t.Helper()
	switch kind {
	case "sse":
		if cursor != "" {
			return ts.dialSSE(t, q, "Last-Event-ID", cursor)
		}
		return ts.dialSSE(t, q)
	case "sse-query", "ws":
		if cursor != "" {
			q += "&" + query("last_event_id", cursor)
		}
		if kind == "ws" {
			return ts.dialWS(t, q)
		}
		return ts.dialSSE(t, q)
	}
	t.Fatalf("unknown stream kind %q", kind)
	return nil
}

// closeAndWait closes a client and waits until the server has let go of it.
func (ts *testServer) closeAndWait(t *testing.T, c streamtest.Stream) {
	t.Helper()
	before := ts.Hub.Len()
	c.Close()
	streamtest.Eventually(t, "the server to drop the connection", func() bool { return ts.Hub.Len() < before })
}

// disconnects returns the reasons of the disconnect audit records so far.
func (ts *testServer) disconnects() []string {
	var out []string
	for _, r := range ts.Logs.Records("disconnect") {
		reason, _ := r["reason"].(string)
		out = append(out, reason)
	}
	return out
}

// cursorSeq is the sequence number inside a stream cursor.
func cursorSeq(t *testing.T, cursor string) uint64 {
	t.Helper()
	c, err := broker.ParseCursor(cursor)
	if err != nil {
		t.Fatalf("not a valid cursor: %q", cursor)
	}
	return c.Seq
}

// checkIncreasing fails unless the frames' cursors' sequence numbers
// strictly increase, each after floor.
func checkIncreasing(t *testing.T, frames []streamtest.Frame, floor uint64) {
	t.Helper()
	for _, f := range frames {
		seq := cursorSeq(t, f.Cursor())
		if seq <= floor {
			t.Fatalf("cursor %s does not follow seq %d", f.Cursor(), floor)
		}
		floor = seq
	}
}

func query(kv ...string) string { return streamtest.Query(kv...) }
