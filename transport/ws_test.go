package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/internal/streamtest"
)

// The WebSocket transport: its frames (the same encoding as SSE), the
// actions a client sends (ping, subscribe, unsubscribe) and the error frames
// it gets for bad ones.

func TestWSFraming(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	ws := ts.dialWS(t, query("user_id", "alice", "channels", "news"))
	sse := ts.dialSSE(t, query("user_id", "alice", "channels", "news"))
	sse.Ready(t)

	ready := ws.Ready(t)
	is.Equal(ready["user_id"], "alice")
	is.Equal(ready["channels"], []any{"news"})
	is.True(ready["connection_id"] != "")
	_, err := broker.ParseCursor(ready["cursor"].(string))
	is.NoErr(err)

	id := ts.send(t, map[string]any{"title": "Hello", "user_id": "alice"})
	bid := ts.send(t, map[string]any{"title": "Breaking", "channels": []string{"news"}})
	for _, want := range []string{id, bid} {
		m := ws.NextNotification(t, want)
		ev := sse.NextNotification(t, want)
		// One encoding for both transports: the same cursor, the same
		// fields.
		is.Equal(m.Cursor(), ev.Cursor())
		is.Equal(m, ev)
	}
}

func TestWSActions(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	ws := ts.dialWS(t, query("user_id", "alice", "channels", "news"))
	connID := ws.Ready(t)["connection_id"]

	pingPong := func() {
		t.Helper()
		ws.Send(t, map[string]any{"action": "ping"})
		is.Equal(ws.Next(t), streamtest.Frame{"event": "pong"})
	}
	sendRaw := func(typ websocket.MessageType, b []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		is.NoErr(ws.Conn.Write(ctx, typ, b))
	}

	pingPong()

	ws.Send(t, map[string]any{"action": "subscribe", "channels": []string{"tech", "music"}})
	m := ws.NextEvent(t, "subscribed")
	is.Equal(m["connection_id"], connID)
	is.Equal(m["channels"], []any{"tech", "music"})
	is.Equal(m["subscriptions"], []any{"music", "news", "tech"})
	id := ts.send(t, map[string]any{"title": "on tech", "channels": []string{"tech"}})
	ws.NextNotification(t, id)

	ws.Send(t, map[string]any{"action": "unsubscribe", "channels": []string{"tech"}})
	m = ws.NextEvent(t, "unsubscribed")
	is.Equal(m["channels"], []any{"tech"})
	is.Equal(m["subscriptions"], []any{"music", "news"})
	ts.send(t, map[string]any{"title": "on tech again", "channels": []string{"tech"}})
	marker := ts.send(t, map[string]any{"title": "marker", "user_id": "alice"})
	ws.NextNotification(t, marker) // nothing on tech in between

	// Bad frames get an error frame; the connection stays usable.
	for _, tc := range []struct {
		name string
		typ  websocket.MessageType
		body string
		code string
	}{
		{"unknown action", websocket.MessageText, `{"action":"dance"}`, "unknown_action"},
		{"missing action", websocket.MessageText, `{}`, "unknown_action"},
		{"invalid JSON", websocket.MessageText, `{"action":`, "invalid_json"},
		{"not an object", websocket.MessageText, `["ping"]`, "invalid_json"},
		{"bad channel name", websocket.MessageText, `{"action":"subscribe","channels":["no spaces!"]}`, "validation_failed"},
		{"no channels", websocket.MessageText, `{"action":"subscribe","channels":[]}`, "validation_failed"},
		{"binary frame", websocket.MessageBinary, `{"action":"ping"}`, "invalid_frame"},
	} {
		sendRaw(tc.typ, []byte(tc.body))
		m := ws.Next(t)
		if m["event"] != "error" || m["code"] != tc.code {
			t.Fatalf("%s: got %v, want an error frame with code %s", tc.name, m, tc.code)
		}
		msg, _ := m["message"].(string)
		is.True(msg != "")
		pingPong()
	}
	// The bad subscribe changed nothing.
	status, resp, _ := ts.do(t, http.MethodPost, fmt.Sprintf("/api/v1/connections/%s/unsubscribe", connID), map[string]any{"channels": []string{"zzz"}})
	is.Equal(status, http.StatusOK)
	is.Equal(resp["channels"], []any{"music", "news"})
	ws.NextEvent(t, "unsubscribed")
	is.Equal(ts.Hub.Len(), 1)

	// A frame over MaxFrameBytes closes the connection with 1009.
	sendRaw(websocket.MessageText, []byte(`{"action":"ping","pad":"`+strings.Repeat("x", 17<<10)+`"}`))
	is.Equal(ws.Closed(t), websocket.StatusMessageTooBig)
	streamtest.Eventually(t, "the disconnect record", func() bool { return slices.Contains(ts.disconnects(), "frame_too_large") })
	is.Equal(ts.Hub.Len(), 0)
}

// headHeldBus holds the first Head (a new stream reads it just before
// registering its connection) until a Subscribe arrives or hold passes, so
// a subscribe acted on before registration cannot slip by unnoticed.
type headHeldBus struct {
	broker.Bus
	hold       time.Duration
	once       sync.Once
	subscribed chan struct{}
	held       sync.Once
}

func (b *headHeldBus) Head(ctx context.Context) (broker.Cursor, error) {
	b.held.Do(func() {
		select {
		case <-b.subscribed:
		case <-time.After(b.hold):
		}
	})
	return b.Bus.Head(ctx)
}

func (b *headHeldBus) Subscribe(ctx context.Context, c broker.ChannelChange) (broker.Subscription, error) {
	b.once.Do(func() { close(b.subscribed) })
	return b.Bus.Subscribe(ctx, c)
}

// TestWSSubscribeRightAfterOpen: a client that subscribes the moment the
// socket opens, before its ready frame, is subscribed, not told its
// connection does not exist.
func TestWSSubscribeRightAfterOpen(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, wrapBus(func(b broker.Bus) broker.Bus {
		return &headHeldBus{Bus: b, hold: 300 * time.Millisecond, subscribed: make(chan struct{})}
	}))
	ws := ts.dialWS(t, query("user_id", "alice"))
	ws.Send(t, map[string]any{"action": "subscribe", "channels": []string{"news"}})
	ws.Ready(t)
	m := ws.NextEvent(t, "subscribed")
	is.Equal(m["subscriptions"], []any{"news"})
	id := ts.send(t, map[string]any{"title": "on news", "channels": []string{"news"}})
	ws.NextNotification(t, id)
}
