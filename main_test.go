package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// waitTimeout bounds every wait for an event; tests never sleep to hope.
const waitTimeout = streamtest.WaitTimeout

// service is the whole program, wired by serve, on a loopback listener.
type service struct {
	addr   string // host:port
	url    string // http://host:port
	logs   *syncBuffer
	client *http.Client
	stop   context.CancelFunc

	stopped chan struct{}
	err     error // serve's result, once stopped is closed
}

// testEnviron is the configuration every service in these tests starts
// from: short heartbeats so the heartbeat paths run too, JSON logs at debug
// so audit records can be read back.
func testEnviron() map[string]string {
	return map[string]string{
		"HEARTBEAT_INTERVAL": "50ms",
		"PONG_TIMEOUT":       "2s",
		"WRITE_TIMEOUT":      "2s",
		"SHUTDOWN_TIMEOUT":   "5s",
		"LOG_FORMAT":         "json",
		"LOG_LEVEL":          "debug",
	}
}

// startService runs serve in a goroutine until the test stops it or ends;
// overrides are variable, value pairs over testEnviron.
func startService(t *testing.T, overrides ...string) *service {
	t.Helper()
	environ := testEnviron()
	for i := 0; i+1 < len(overrides); i += 2 {
		environ[overrides[i]] = overrides[i+1]
	}
	cfg, err := loadConfig(environ)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &service{
		addr:    ln.Addr().String(),
		url:     "http://" + ln.Addr().String(),
		logs:    &syncBuffer{},
		client:  &http.Client{Transport: &http.Transport{}},
		stop:    cancel,
		stopped: make(chan struct{}),
	}
	go func() {
		defer close(s.stopped)
		s.err = serve(ctx, cfg, newLogger(cfg, s.logs), ln)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.stopped:
		case <-time.After(2 * cfg.ShutdownTimeout):
			t.Error("serve did not return after its context ended")
		}
		s.client.CloseIdleConnections()
	})
	return s
}

// wait waits for serve to return and gives its error.
func (s *service) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-s.stopped:
		return s.err
	case <-time.After(waitTimeout):
		t.Fatal("serve did not return")
	}
	return nil
}

// do sends a request with a JSON body (nil: none) and decodes the JSON
// answer into a map.
func (s *service) do(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	status, raw, err := s.try(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, raw)
		}
	}
	return status, m
}

// try is do without failing the test: a connection error is an outcome.
// headers are name, value pairs.
func (s *service) try(method, path string, body any, headers ...string) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		enc, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(enc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// syncBuffer collects log output across goroutines and wakes waiters on
// every write, so a test waits for a log record as an event.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed on the next write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// snapshot returns the contents and a channel closed on the next write.
func (b *syncBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.buf.String(), b.changed
}

// records returns the JSON log records for which match holds.
func records(logs string, match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(logs) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && match(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitRecord waits until a JSON log record matches and returns it.
func (b *syncBuffer) waitRecord(t *testing.T, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		logs, changed := b.snapshot()
		if found := records(logs, match); len(found) > 0 {
			return found[0]
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for a log record: %s; logs:\n%s", what, logs)
		}
	}
}

// auditRecord matches the audit records of action whose fields include want.
func auditRecord(action string, want map[string]any) func(map[string]any) bool {
	return func(m map[string]any) bool {
		if m["msg"] != "audit" || m["action"] != action {
			return false
		}
		for k, v := range want {
			if m[k] != v {
				return false
			}
		}
		return true
	}
}

// openSSE opens /sse with the query given, requires a 200 and starts
// reading.
func (s *service) openSSE(t *testing.T, query string) *streamtest.SSE {
	t.Helper()
	sse := streamtest.DialSSENoRead(t, s.client, s.url+"/sse?"+query)
	if sse.Resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /sse: status %d", sse.Resp.StatusCode)
	}
	sse.StartReading()
	return sse
}

// openWS opens /ws with the query given and starts reading.
func (s *service) openWS(t *testing.T, query string) *streamtest.WS {
	t.Helper()
	return streamtest.DialWS(t, "ws://"+s.addr+"/ws?"+query)
}

// dialWS opens /ws without reading: until StartReading, the client answers
// neither pings nor the server's close frame.
func (s *service) dialWS(t *testing.T, query string) *streamtest.WS {
	t.Helper()
	return streamtest.DialWSNoRead(t, "ws://"+s.addr+"/ws?"+query)
}

func query(kv ...string) string { return streamtest.Query(kv...) }

// TestServeEndToEnd drives the real wiring: REST into the bus and inbox,
// the scheduler firing into a live stream.
func TestServeEndToEnd(t *testing.T) {
	is := is.New(t)
	svc := startService(t)

	status, health := svc.do(t, http.MethodGet, "/health", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(health["status"], "ok")

	// The seed's body, PHP's [] for data included.
	status, sent := svc.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{
		"type": "tarea", "title": "Nueva tarea", "message": "Se te asignó una tarea", "user_id": "user123", "data": []any{},
	})
	is.Equal(status, http.StatusCreated)
	id, _ := sent["id"].(string)
	is.True(id != "")
	_, err := time.Parse(time.RFC3339, sent["timestamp"].(string))
	is.NoErr(err)

	status, box := svc.do(t, http.MethodGet, "/api/v1/notifications/user/user123", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(box["total"], float64(1))
	is.Equal(box["unread"], float64(1))
	first := box["notifications"].([]any)[0].(map[string]any)
	is.Equal(first["id"], id)
	is.Equal(first["type"], "tarea")
	is.Equal(first["title"], "Nueva tarea")

	sse := svc.openSSE(t, query("user_id", "user123"))
	is.Equal(sse.Ready(t)["user_id"], "user123")

	at := time.Now().Add(200 * time.Millisecond).UTC()
	status, scheduled := svc.do(t, http.MethodPost, "/api/v1/notifications/schedule", map[string]any{
		"type": "recordatorio", "title": "Later", "message": "m", "user_id": "user123",
		"scheduled_at": at.Format(time.RFC3339Nano),
	})
	is.Equal(status, http.StatusCreated)
	is.Equal(scheduled["user_id"], "user123")

	n := sse.NextNotification(t, scheduled["id"].(string)) // the default event type, its id: its cursor
	arrived := time.Now()
	is.Equal(n["title"], "Later")
	is.Equal(n["user_id"], "user123")
	is.True(!arrived.Before(at)) // not early

	svc.logs.waitRecord(t, "fire audit", auditRecord("fire", map[string]any{"schedule_id": scheduled["id"]}))
	status, box = svc.do(t, http.MethodGet, "/api/v1/notifications/user/user123", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(box["total"], float64(2)) // the fired one is in the inbox too
}

func TestServeShutsDownGracefully(t *testing.T) {
	is := is.New(t)
	svc := startService(t)

	sse := svc.openSSE(t, query("user_id", "u1"))
	sse.Ready(t)
	// This client does not read yet, so the server's close handshake with
	// it cannot finish: http.Server.Shutdown does not wait for a hijacked
	// connection, serve must.
	ws := svc.dialWS(t, query("user_id", "u2"))
	is.Equal(ws.ReadOne(t)["event"], "ready")

	start := time.Now()
	svc.stop()

	is.Equal(sse.NextEvent(t, "reconnect")["reason"], "server_shutdown")
	_, more := sse.NextOrEnd(t)
	is.True(!more)    // then the stream ends...
	is.NoErr(sse.Err) // ...cleanly, at EOF

	// Proving a negative needs a grace period; correct code never returns
	// here, so this cannot fail spuriously.
	select {
	case <-svc.stopped:
		t.Fatalf("serve returned (%v) while a WebSocket handler was still closing", svc.err)
	case <-time.After(200 * time.Millisecond):
	}
	ws.StartReading() // answers the close frame
	is.Equal(ws.Closed(t), websocket.StatusServiceRestart)

	is.NoErr(svc.wait(t))
	if took := time.Since(start); took >= 3*time.Second {
		t.Errorf("serve took %v to shut down with SHUTDOWN_TIMEOUT=5s", took)
	}
	conn, err := net.DialTimeout("tcp", svc.addr, waitTimeout)
	if err == nil {
		conn.Close()
		t.Fatal("the listener still accepts after serve returned")
	}

	logs := svc.logs.String()
	is.Equal(len(records(logs, auditRecord("disconnect", map[string]any{"transport": "sse", "reason": "server_shutdown"}))), 1)
	is.Equal(len(records(logs, auditRecord("disconnect", map[string]any{"transport": "ws", "reason": "server_shutdown"}))), 1)
	is.Equal(len(records(logs, func(m map[string]any) bool { return m["msg"] == "shutting down" })), 1)
	is.Equal(len(records(logs, func(m map[string]any) bool { return m["msg"] == "stopped" })), 1)
	is.Equal(len(records(logs, func(m map[string]any) bool { return m["level"] == "ERROR" })), 0)
}

// A request the server has begun when shutdown starts is finished, stored
// and answered. Expect: 100-continue makes "begun" observable: the server
// sends 100 Continue only once the handler reads the body.
func TestServeFinishesInFlightRequestDuringShutdown(t *testing.T) {
	is := is.New(t)
	svc := startService(t)
	// Its reconnect event proves Shutdown has closed the listener (it runs
	// the shutdown hooks after that).
	sse := svc.openSSE(t, query("user_id", "watcher"))
	sse.Ready(t)

	conn, err := net.Dial("tcp", svc.addr)
	is.NoErr(err)
	defer conn.Close()
	is.NoErr(conn.SetDeadline(time.Now().Add(waitTimeout)))
	body := `{"title":"in flight","message":"m","user_id":"u1"}`
	_, err = fmt.Fprintf(conn, "POST /api/v1/notifications/send HTTP/1.1\r\nHost: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", svc.addr, len(body))
	is.NoErr(err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	is.NoErr(err)
	is.Equal(resp.StatusCode, http.StatusContinue) // the handler is running

	svc.stop()
	sse.NextEvent(t, "reconnect") // shutdown is under way
	if c, err := net.Dial("tcp", svc.addr); err == nil {
		c.Close()
		t.Fatal("the listener still accepts during shutdown")
	}

	_, err = io.WriteString(conn, body)
	is.NoErr(err)
	resp, err = http.ReadResponse(br, nil)
	is.NoErr(err)
	defer resp.Body.Close()
	is.Equal(resp.StatusCode, http.StatusCreated)
	var sent map[string]any
	is.NoErr(json.NewDecoder(resp.Body).Decode(&sent))
	id, _ := sent["id"].(string)
	is.True(id != "")

	is.NoErr(svc.wait(t))
	is.Equal(len(records(svc.logs.String(), auditRecord("send", map[string]any{"notification_id": sent["id"]}))), 1)
}

// Sends racing the cancel each get a 201 or a connection error, never a
// server error: which of the two each gets depends on timing, the rule
// does not.
func TestServeSendsRacingShutdownNeverFail(t *testing.T) {
	is := is.New(t)
	svc := startService(t)
	// A pooling client may dial a connection it then never uses, and
	// Shutdown waits up to 5s for a connection that has sent nothing (see
	// TestServeShutdownTimeoutClosesWhatIsLeft): one request per
	// connection keeps this test about requests.
	svc.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	const senders = 16
	type outcome struct {
		status int
		body   []byte
		err    error
	}
	outcomes := make(chan outcome, senders)
	begin := make(chan struct{})
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			<-begin
			status, body, err := svc.try(http.MethodPost, "/api/v1/notifications/send",
				map[string]any{"title": "race " + strconv.Itoa(i), "message": "m", "user_id": "u1"})
			outcomes <- outcome{status, body, err}
		})
	}
	close(begin)
	svc.stop()
	wg.Wait()
	close(outcomes)
	created := 0
	for o := range outcomes {
		switch {
		case o.err != nil:
		case o.status == http.StatusCreated:
			created++
		default:
			t.Errorf("a send racing shutdown got %d: %s", o.status, o.body)
		}
	}
	is.NoErr(svc.wait(t))
	// Every 201 was really sent.
	is.Equal(len(records(svc.logs.String(), auditRecord("send", nil))), created)
}

// When SHUTDOWN_TIMEOUT runs out, serve says so once and closes what is
// left instead of leaving it open behind it. What can hold Shutdown that
// long: a request stuck reading its body, as here, or a connection that
// never sent a request (a browser's preconnect, a load balancer's TCP
// check), which http.Server.Shutdown waits up to 5s for.
func TestServeShutdownTimeoutClosesWhatIsLeft(t *testing.T) {
	is := is.New(t)
	svc := startService(t, "SHUTDOWN_TIMEOUT", "100ms")

	conn, err := net.Dial("tcp", svc.addr)
	is.NoErr(err)
	defer conn.Close()
	is.NoErr(conn.SetDeadline(time.Now().Add(waitTimeout)))
	_, err = fmt.Fprintf(conn, "POST /api/v1/notifications/send HTTP/1.1\r\nHost: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n", svc.addr)
	is.NoErr(err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	is.NoErr(err)
	is.Equal(resp.StatusCode, http.StatusContinue) // the handler waits for a body that never comes

	start := time.Now()
	svc.stop()
	err = svc.wait(t)
	if took := time.Since(start); took >= 3*time.Second {
		t.Errorf("serve took %v with SHUTDOWN_TIMEOUT=100ms", took)
	}
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.Equal(err.Error(), "http shutdown: context deadline exceeded") // no stream was open: nothing else to report

	_, err = br.ReadByte()
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatal("serve returned but left the connection open")
	}
}

func TestServeAuditsConnectAndDisconnect(t *testing.T) {
	is := is.New(t)
	svc := startService(t)

	ws := svc.openWS(t, query("user_id", "auditee", "channels", "news"))
	ready := ws.Ready(t)
	connID := ready["connection_id"].(string)

	connect := svc.logs.waitRecord(t, "connect audit", auditRecord("connect", map[string]any{"connection_id": connID}))
	is.Equal(connect["transport"], "ws")
	is.Equal(connect["user_id"], "auditee")
	is.Equal(connect["remote_addr"], ws.LocalAddr)
	is.Equal(connect["channels"], []any{"news"})

	is.NoErr(ws.Conn.Close(websocket.StatusNormalClosure, "bye"))
	disconnect := svc.logs.waitRecord(t, "disconnect audit", auditRecord("disconnect", map[string]any{"connection_id": connID}))
	is.Equal(disconnect["transport"], "ws")
	is.Equal(disconnect["user_id"], "auditee")
	is.Equal(disconnect["remote_addr"], ws.LocalAddr)
	is.Equal(disconnect["reason"], "client_closed")
}

// run is what main calls: it listens on PORT and serves until its context
// ends.
func TestRunServesUntilCancelled(t *testing.T) {
	is := is.New(t)
	stdout := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, map[string]string{"PORT": "0", "LOG_FORMAT": "json"}, stdout) }()

	listening := stdout.waitRecord(t, "listening", func(m map[string]any) bool { return m["msg"] == "listening" })
	_, port, err := net.SplitHostPort(listening["addr"].(string))
	is.NoErr(err)
	resp, err := http.Get("http://127.0.0.1:" + port + "/health")
	is.NoErr(err)
	resp.Body.Close()
	is.Equal(resp.StatusCode, http.StatusOK)

	cancel()
	select {
	case err := <-done:
		is.NoErr(err)
	case <-time.After(waitTimeout):
		t.Fatal("run did not return after its context ended")
	}
	if !strings.Contains(stdout.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped record in %s", stdout)
	}
}
