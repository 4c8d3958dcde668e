package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"notification-service/scripts/internal/streamread"
)

// readSSE opens an SSE stream for c on instance inst and reads it until it
// ends: a raw TCP connection with one hand-written request, as lean as the
// load generator's client. It says whether the stream opened.
func (f *fleet) readSSE(ctx context.Context, c *client, inst int) (bool, error) {
	addr := f.addrs[inst]
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	conn, err := f.dial(dctx, c, addr)
	cancel()
	if err != nil {
		return false, err
	}
	if !c.setConn(conn, f.stopping.Load) {
		return false, context.Canceled
	}
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/sse?"+f.streamQuery(c, ""), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if cur := c.resumeCursor(); cur != "" {
		req.Header.Set("Last-Event-ID", cur)
	}
	if err := req.Write(conn); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1024), req)
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, statusError{status: resp.StatusCode, body: string(bytes.TrimSpace(body))}
	}
	events := streamread.NewSSEReader(resp.Body, 2048)
	ev, err := events.Next()
	if err != nil {
		return false, err
	}
	if se, ok := refusalEvent(ev.Name, ev.Data); ok {
		return false, se
	}
	if string(ev.Name) != "ready" {
		return false, errNoReady
	}
	_ = conn.SetDeadline(time.Time{}) // from here the watchdog watches it
	f.streamOpened(c, inst, ev.Data)
	for {
		ev, err := events.Next()
		if err != nil {
			return true, err
		}
		switch string(ev.Name) {
		case "":
			if n, ok := streamread.NumberAfter(ev.Data, f.marker); ok {
				c.onNotification(n, ev.Data, f.now())
			}
		case "reset":
			c.onReset()
			f.ev.add(resetEvent, f.now())
		case "error", "reconnect":
			// The server closes the stream after these.
			return true, serverEnd{"event " + string(ev.Name) + " " + reasonOf(ev.Data)}
		}
	}
}

// refusalEvent reads a refused connect answered as an event stream (a 200
// whose first event is an error with a retryable code and retry_after_ms)
// as the status it stands for.
func refusalEvent(name, data []byte) (statusError, bool) {
	if string(name) != "error" {
		return statusError{}, false
	}
	code := reasonOf(data)
	status, ok := refusedStatus[code]
	if !ok {
		return statusError{}, false
	}
	ms, _ := streamread.NumberAfter(data, []byte(`"retry_after_ms":`))
	return statusError{status: status, body: code + " (as an event stream)", retryAfter: time.Duration(ms) * time.Millisecond}, true
}
