package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"notification-service/internal/streamtest"
)

// The whole program as the root package's tests run it: serve on a loopback
// listener (startService), a client for its REST API (do, try, send,
// tryJSON), its logs read back as events (waitRecord), and its streams read
// with streamtest (openSSE, openWS).

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

// send posts a notification and returns the answer, failing unless 201.
func send(t *testing.T, svc *service, body map[string]any) map[string]any {
	t.Helper()
	status, out := svc.do(t, http.MethodPost, "/api/v1/notifications/send", body)
	if status != http.StatusCreated {
		t.Fatalf("send: status %d: %v", status, out)
	}
	return out
}

// tryJSON sends a JSON request with extra header pairs and decodes a JSON
// object answer; a connection error is an outcome, not a failure.
func (s *service) tryJSON(method, path string, body any, headers ...string) (int, map[string]any, error) {
	status, raw, err := s.try(method, path, body, headers...)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return status, nil, fmt.Errorf("%s %s: answer is not a JSON object: %q", method, path, raw)
		}
	}
	return status, m, nil
}

// answer is a status and its JSON body.
type answer struct {
	status int
	body   map[string]any
}

// doWithHeaders is tryJSON failing the test on a connection error.
func (s *service) doWithHeaders(t *testing.T, method, path string, body any, headers ...string) answer {
	t.Helper()
	status, m, err := s.tryJSON(method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return answer{status, m}
}

// mustSchedule posts a schedule and returns the answer, failing unless 201.
func (s *service) mustSchedule(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	a := s.doWithHeaders(t, http.MethodPost, "/api/v1/notifications/schedule", body)
	if a.status != http.StatusCreated {
		t.Fatalf("schedule: status %d: %v", a.status, a.body)
	}
	return a.body
}
