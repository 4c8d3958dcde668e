package main

import (
	"bufio"
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
)

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
