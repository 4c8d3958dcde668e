package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

// Hostile connections (docs/ARCHITECTURE.md#security-and-hostile-input):
// what the HTTP server itself bounds before any handler runs. Each row is an
// attack on a real server wired by serve; it fails if the attack gets a
// normal answer or keeps its connection.

// rawRequest writes head (request line and headers, without the final
// blank line) and reads the answer.
func rawRequest(t *testing.T, s *service, head string) *http.Response {
	t.Helper()
	conn := rawDial(t, s)
	if _, err := io.WriteString(conn, head+"\r\n\r\n"); err != nil {
		// The server may answer and close before reading it all.
		t.Logf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func rawDial(t *testing.T, s *service) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	return conn
}

// waitClosed reads until the server closes conn and returns what it sent
// first; it fails the test if the connection is still open at the deadline.
func waitClosed(t *testing.T, conn net.Conn) string {
	t.Helper()
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s (read %q)", waitTimeout, got)
	}
	return string(got)
}

func TestServeBoundsHeaders(t *testing.T) {
	manyHeaders := make([]string, 2000)
	for i := range manyHeaders {
		manyHeaders[i] = fmt.Sprintf("X-H%d: v", i)
	}
	for _, tc := range []struct {
		name      string
		overrides []string
		head      string
		status    int
	}{
		{"one 64 KiB header", nil, "GET /health HTTP/1.1\r\nHost: x\r\nX-Flood: " + strings.Repeat("a", 64<<10), http.StatusRequestHeaderFieldsTooLarge},
		{"2,000 headers", nil, "GET /health HTTP/1.1\r\nHost: x\r\n" + strings.Join(manyHeaders, "\r\n"), http.StatusRequestHeaderFieldsTooLarge},
		{"a 64 KiB URL", nil, "GET /health?x=" + strings.Repeat("a", 64<<10) + " HTTP/1.1\r\nHost: x", http.StatusRequestHeaderFieldsTooLarge},
		{"64 KiB of cookies", nil, "GET /sse?user_id=u1 HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("c=1; ", 13<<10), http.StatusRequestHeaderFieldsTooLarge},
		// net/http allows 4 KiB over MaxHeaderBytes.
		{"MAX_HEADER_BYTES=1024, 8 KiB header", []string{"MAX_HEADER_BYTES", "1024"}, "GET /health HTTP/1.1\r\nHost: x\r\nX-Flood: " + strings.Repeat("a", 8<<10), http.StatusRequestHeaderFieldsTooLarge},
		// The controls: headers under the limits are served.
		{"MAX_HEADER_BYTES=1024, 512 B header", []string{"MAX_HEADER_BYTES", "1024"}, "GET /health HTTP/1.1\r\nHost: x\r\nX-Small: " + strings.Repeat("a", 512), http.StatusOK},
		{"a 12 KiB header", nil, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 12<<10), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			s := startService(t, tc.overrides...)
			resp := rawRequest(t, s, tc.head)
			is.Equal(resp.StatusCode, tc.status)
			// Still serving.
			status, _ := s.do(t, http.MethodGet, "/health", nil)
			is.Equal(status, http.StatusOK)
		})
	}
}

// TestServeCutsSlowClients: a client that takes longer than
// READ_HEADER_TIMEOUT to send its headers, however it trickles them, and a
// keep-alive connection idle for IDLE_TIMEOUT, are disconnected.
func TestServeCutsSlowClients(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, conn net.Conn, trickle *sync.WaitGroup, done <-chan struct{})
	}{
		{"opens and sends nothing", func(*testing.T, net.Conn, *sync.WaitGroup, <-chan struct{}) {}},
		{"stops within the request line", func(t *testing.T, conn net.Conn, _ *sync.WaitGroup, _ <-chan struct{}) {
			_, _ = io.WriteString(conn, "GET /heal")
		}},
		{"trickles headers byte by byte", func(t *testing.T, conn net.Conn, trickle *sync.WaitGroup, done <-chan struct{}) {
			_, _ = io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: x\r\n")
			// One byte of an endless header every 20ms: the pace is the
			// attack, nothing waits on it.
			trickle.Go(func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-done:
						return
					case <-tick.C:
						if _, err := conn.Write([]byte("a")); err != nil {
							return
						}
					}
				}
			})
			_, _ = io.WriteString(conn, "X-Slow: ")
		}},
		{"idles after a request", func(t *testing.T, conn net.Conn, _ *sync.WaitGroup, _ <-chan struct{}) {
			_, _ = io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("first request: %v %v", resp, err)
			}
			resp.Body.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			s := startService(t, "READ_HEADER_TIMEOUT", timeout.String(), "IDLE_TIMEOUT", timeout.String())
			start := time.Now()
			conn := rawDial(t, s)
			var trickle sync.WaitGroup
			defer trickle.Wait()
			done := make(chan struct{})
			defer close(done)
			tc.attack(t, conn, &trickle, done)
			got := waitClosed(t, conn)
			is.True(time.Since(start) >= timeout) // cut by the timeout, not at once
			// Cut silently, or with net/http's plain-text 400 when part of
			// the request line came; never served.
			is.True(got == "" || strings.HasPrefix(got, "HTTP/1.1 400 "))
		})
	}
}

// TestServeMaxJSONDepth: MAX_JSON_DEPTH reaches the REST decoder.
func TestServeMaxJSONDepth(t *testing.T) {
	is := is.New(t)
	s := startService(t, "MAX_JSON_DEPTH", "3")
	status, _ := s.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{
		"title": "x", "user_id": "u1", "data": map[string]any{"a": map[string]any{}},
	})
	is.Equal(status, http.StatusCreated) // three levels: body, data, a
	status, resp := s.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{
		"title": "x", "user_id": "u1", "data": map[string]any{"a": map[string]any{"b": []any{}}},
	})
	is.Equal(status, http.StatusBadRequest)
	is.Equal(resp["error"].(map[string]any)["code"], "json_too_deep")
}
