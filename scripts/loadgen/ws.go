package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/coder/websocket"

	"notification-service/scripts/internal/streamread"
)

// The WebSocket client is coder/websocket, the library the server uses,
// with compression off (as the server has it: context takeover would cost
// about 1.2 MB per connection on both sides). One goroutine per connection
// reads frames into a buffer it reuses.

var (
	notificationPrefix = []byte(`{"event":"notification"`)
	readyEvent         = []byte(`"event":"ready"`)
	errorEvent         = []byte(`"event":"error"`)
)

// openWS connects s as a WebSocket and waits for its ready frame. It returns
// the loop that reads the rest of the stream until it ends.
func openWS(ctx context.Context, tg *target, s *stream, onNotification func(*stream, []byte)) (func() error, error) {
	ctx = withStreamIndex(ctx, s.index)
	ws, resp, err := websocket.Dial(ctx, tg.streamURL("/ws", s), &websocket.DialOptions{
		HTTPClient:      tg.wsClient,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("ws: %s%s: %w", resp.Status, statusHint(resp.StatusCode), err)
		}
		return nil, fmt.Errorf("ws: %w", err)
	}
	s.closer = closerFunc(ws.CloseNow)
	ws.SetReadLimit(1 << 20)

	buf := make([]byte, 0, 1024)
	// ctx bounds the handshake and the wait for ready; the loop below reads
	// with a context that never ends (which costs coder/websocket nothing
	// per read), and the run ends it by closing the connection.
	buf, err = streamread.ReadWSMessage(ctx, ws, buf)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("ws: waiting for ready: %w", err)
	}
	if !bytes.Contains(buf, readyEvent) {
		ws.CloseNow()
		return nil, fmt.Errorf("ws: first frame is not ready: %.200s", buf)
	}

	return func() error {
		for {
			var err error
			buf, err = streamread.ReadWSMessage(context.Background(), ws, buf)
			if err != nil {
				return err
			}
			switch {
			case bytes.HasPrefix(buf, notificationPrefix):
				onNotification(s, buf)
			case bytes.Contains(buf, errorEvent):
				return fmt.Errorf("ws: server sent an error: %.200s", buf)
			}
		}
	}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
