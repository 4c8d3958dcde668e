package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"notification-service/scripts/internal/streamread"
)

// The SSE client is a raw TCP connection, one HTTP/1.1 request written by
// hand, net/http's response parser (for the status, the headers and the
// chunked body) and a minimal event reader: one goroutine and two small
// buffers per connection, no allocation per event. Its CPU is taken from
// the same two cores the server runs on, so it is kept as lean as a
// browser's EventSource is not.

// openSSE connects s as an SSE stream and waits for its ready event. It
// returns the loop that reads the rest of the stream until it ends.
func openSSE(ctx context.Context, tg *target, s *stream, onNotification func(*stream, []byte)) (func() error, error) {
	conn, err := tg.dial(ctx, s.index)
	if err != nil {
		return nil, err
	}
	s.closer = conn
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	req, err := http.NewRequest(http.MethodGet, tg.streamURL("/sse", s), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sse: write request: %w", err)
	}
	br := bufio.NewReaderSize(conn, 2048)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sse: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		return nil, fmt.Errorf("sse: %s%s: %s", resp.Status, statusHint(resp.StatusCode), bytes.TrimSpace(body))
	}
	events := streamread.NewSSEReader(resp.Body, 2048)
	for {
		ev, err := events.Next()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("sse: waiting for ready: %w", err)
		}
		if string(ev.Name) == "ready" { // always the first event
			break
		}
	}
	// From here the stream lives until the run closes it.
	_ = conn.SetDeadline(time.Time{})

	return func() error {
		for {
			ev, err := events.Next()
			if err != nil {
				return err
			}
			switch string(ev.Name) {
			case "":
				onNotification(s, ev.Data)
			case "error", "reconnect":
				// The server ends the stream after these; say why.
				return fmt.Errorf("sse: server sent %s: %s", ev.Name, ev.Data)
			}
		}
	}, nil
}
