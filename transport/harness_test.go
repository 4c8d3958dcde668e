package transport_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/audit"
	"notification-service/broker"
	"notification-service/idempotency"
	"notification-service/inbox"
	"notification-service/schedule"
	"notification-service/transport"
)

// waitTimeout bounds every wait for an event; tests never sleep to hope.
const waitTimeout = 5 * time.Second

// testServer is the whole service in memory behind a real HTTP server.
type testServer struct {
	*httptest.Server
	Transport *transport.Server
	Hub       *broker.Hub
	Bus       *broker.Memory
	Inbox     *inbox.Memory
	Scheduler *schedule.Memory
	Logs      *logBuffer
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

// newTestServer starts the service; tweak adjusts its options and limits.
func newTestServer(t testing.TB, tweak ...func(*transport.Options, *inbox.Limits, *broker.HistoryLimits)) *testServer {
	t.Helper()
	return newTestServerWrapping(t, nil, tweak...)
}

// newTestServerWrapping is newTestServer with the bus the transport sees
// wrapped (wrap may be nil), to observe or hold back its calls.
func newTestServerWrapping(t testing.TB, wrap func(broker.Bus) broker.Bus, tweak ...func(*transport.Options, *inbox.Limits, *broker.HistoryLimits)) *testServer {
	t.Helper()
	opts := defaultOptions()
	inboxLimits := inbox.Limits{MaxPerUser: 1000, MaxAge: 24 * time.Hour}
	historyLimits := broker.HistoryLimits{MaxPerChannel: 1000, MaxAge: 24 * time.Hour}
	for _, f := range tweak {
		f(&opts, &inboxLimits, &historyLimits)
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	auditLog := audit.New(logger)
	hub := broker.NewHub(opts.MaxChannels)
	store := inbox.NewMemory(inboxLimits)
	bus := broker.NewMemory(hub, store, historyLimits, func(n broker.Notification, reached int) {
		auditLog.Record("delivery", slog.String("notification_id", n.ID), slog.Int("connections", reached))
	})
	sched := schedule.NewMemory(logger)
	var seen broker.Bus = bus
	if wrap != nil {
		seen = wrap(bus)
	}
	srv := transport.New(transport.Deps{
		Hub: hub, Bus: seen, Inbox: store, Scheduler: sched,
		Idempotency: idempotency.NewMemory(time.Hour), Audit: auditLog, Logger: logger,
	}, opts)
	ts := &testServer{Transport: srv, Hub: hub, Bus: bus, Inbox: store, Scheduler: sched, Logs: logs}
	ts.Server = httptest.NewUnstartedServer(srv.Handler())
	ts.Config.RegisterOnShutdown(srv.CloseStreams)
	ts.Start()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Run(ctx) })
	wg.Go(func() { _ = sched.Run(ctx, srv.Fire) })
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

// waitFor polls cond until it holds or the deadline passes; for state that
// has no event to wait on (a connection registering in the hub).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	Event string // "" for the default (message) type
	ID    string
	Data  string
	Retry string // the retry: field, when the event carried one
}

// JSON decodes the event's data.
func (e sseEvent) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.Data), &m); err != nil {
		t.Fatalf("event data is not JSON: %q", e.Data)
	}
	return m
}

// sseClient is a real HTTP client reading a text/event-stream, as an
// EventSource would.
type sseClient struct {
	Resp     *http.Response
	Events   chan sseEvent
	Comments chan string
	cancel   context.CancelFunc
	done     chan struct{}
	readOnce sync.Once
}

// dialSSE opens /sse with the query and headers given.
func (ts *testServer) dialSSE(t *testing.T, query string, headers ...string) *sseClient {
	t.Helper()
	c := ts.dialSSENoRead(t, query, headers...)
	c.startReading()
	return c
}

// dialSSENoRead opens /sse without reading the body until startReading: a
// client that stopped reading.
func (ts *testServer) dialSSENoRead(t *testing.T, query string, headers ...string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/sse?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &sseClient{Resp: resp, Events: make(chan sseEvent, 10000), Comments: make(chan string, 100), cancel: cancel, done: make(chan struct{})}
	t.Cleanup(c.Close)
	return c
}

func (c *sseClient) startReading() { c.readOnce.Do(func() { go c.read() }) }

func (c *sseClient) read() {
	defer close(c.done)
	defer close(c.Events)
	sc := bufio.NewScanner(c.Resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				ev.Data = strings.Join(data, "\n")
				c.Events <- ev
			}
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			select {
			case c.Comments <- line:
			default:
			}
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.Event = value
			case "id":
				ev.ID = value
			case "retry":
				ev.Retry = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

// Next returns the next event, failing the test after waitTimeout.
func (c *sseClient) Next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-c.Events:
		if !ok {
			t.Fatal("SSE stream ended while waiting for an event")
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for an SSE event")
	}
	return sseEvent{}
}

// Ready reads the ready event and returns its JSON.
func (c *sseClient) Ready(t *testing.T) map[string]any {
	t.Helper()
	is := is.New(t)
	ev := c.Next(t)
	is.Equal(ev.Event, "ready")
	return ev.JSON(t)
}

// Ended waits for the server to end the stream.
func (c *sseClient) Ended(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(waitTimeout):
		t.Fatal("SSE stream did not end")
	}
}

func (c *sseClient) Close() {
	c.cancel()
	c.startReading() // a reader that never started still has to finish
	<-c.done
	c.Resp.Body.Close()
}

// wsClient is a real WebSocket client; a goroutine reads its frames.
type wsClient struct {
	Conn   *websocket.Conn
	Frames chan map[string]any
	// Err holds why reading stopped (a close status, for instance).
	Err  error
	done chan struct{}
}

// dialWS opens /ws with the query given and starts reading.
func (ts *testServer) dialWS(t *testing.T, query string) *wsClient {
	t.Helper()
	c := ts.dialWSNoRead(t, query)
	c.startReading()
	return c
}

// dialWSNoRead opens /ws without reading, so pings go unanswered and frames
// pile up: a dead or slow peer.
func (ts *testServer) dialWSNoRead(t *testing.T, query string) *wsClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws?" + query
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	conn.SetReadLimit(1 << 20)
	c := &wsClient{Conn: conn, Frames: make(chan map[string]any, 10000), done: make(chan struct{})}
	t.Cleanup(func() { conn.CloseNow() })
	return c
}

func (c *wsClient) startReading() {
	go func() {
		defer close(c.done)
		defer close(c.Frames)
		for {
			_, data, err := c.Conn.Read(context.Background())
			if err != nil {
				c.Err = err
				return
			}
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				c.Frames <- m
			}
		}
	}()
}

// Send writes one JSON frame.
func (c *wsClient) Send(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// Next returns the next frame, failing after waitTimeout.
func (c *wsClient) Next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m, ok := <-c.Frames:
		if !ok {
			t.Fatalf("WebSocket closed while waiting for a frame: %v", c.Err)
		}
		return m
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a WebSocket frame")
	}
	return nil
}

// NextEvent skips frames until one with the given event arrives.
func (c *wsClient) NextEvent(t *testing.T, event string) map[string]any {
	t.Helper()
	for {
		if m := c.Next(t); m["event"] == event {
			return m
		}
	}
}

// Closed waits for the connection to end and returns the close status.
func (c *wsClient) Closed(t *testing.T) websocket.StatusCode {
	t.Helper()
	select {
	case <-c.done:
		return websocket.CloseStatus(c.Err)
	case <-time.After(waitTimeout):
		t.Fatal("WebSocket was not closed")
	}
	return -1
}

// query builds a query string.
func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}
