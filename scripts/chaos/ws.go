package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"notification-service/scripts/internal/streamread"
)

var (
	notificationPrefix = []byte(`{"event":"notification"`)
	eventField         = []byte(`"event":"`)
)

// readWS opens a WebSocket stream for c on instance inst and reads it until
// it ends, resuming with last_event_id. Channels are in the URL, so a
// resumed stream replays them without waiting for a subscribe frame. It
// says whether the stream opened.
func (f *fleet) readWS(ctx context.Context, c *client, inst int) (bool, error) {
	u := "ws://" + f.addrs[inst] + "/ws?" + f.streamQuery(c, c.resumeCursor())
	dctx, cancel := context.WithTimeout(context.WithValue(ctx, clientKey{}, c), handshakeTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient: f.wsHTTP,
		// As the server has it: context takeover would cost about 1.2 MB
		// per connection on both sides.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			// coder/websocket keeps the start of the body for this.
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(resp.Body)
			}
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return false, statusError{status: resp.StatusCode, body: string(bytes.TrimSpace(body)), retryAfter: time.Duration(secs) * time.Second}
		}
		return false, err
	}
	if !c.setConn(closerFunc(ws.CloseNow), f.stopping.Load) {
		return false, context.Canceled
	}
	ws.SetReadLimit(1 << 20)
	buf, err := streamread.ReadWSMessage(dctx, ws, make([]byte, 0, 1024))
	if err != nil {
		return false, err
	}
	if ev, _ := streamread.StringAfter(buf, eventField); string(ev) != "ready" {
		return false, errNoReady
	}
	cancel()
	f.streamOpened(c, inst, buf)
	for {
		// A read context that never ends costs coder/websocket nothing
		// per read; the watchdog and the end of the run close the
		// connection instead.
		buf, err = streamread.ReadWSMessage(context.Background(), ws, buf)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				return true, serverEnd{"close " + itoa(int(code))}
			}
			return true, err
		}
		if bytes.HasPrefix(buf, notificationPrefix) {
			if n, ok := streamread.NumberAfter(buf, f.marker); ok {
				c.onNotification(n, buf, f.now())
			}
			continue
		}
		ev, _ := streamread.StringAfter(buf, eventField)
		switch string(ev) {
		case "reset":
			c.onReset()
			f.ev.add(resetEvent, f.now())
		case "error":
			// The close that follows says more; keep the code too.
			f.ended("ws error frame " + reasonOf(buf))
		}
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
