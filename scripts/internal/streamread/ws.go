package streamread

import (
	"context"
	"errors"
	"io"

	"github.com/coder/websocket"
)

// ReadWSMessage reads one WebSocket message into buf, reusing its space,
// and returns it. coder/websocket answers pings while it reads.
func ReadWSMessage(ctx context.Context, ws *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := ws.Reader(ctx)
	if err != nil {
		return buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
