package transport_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/internal/streamtest"
)

// TestWSResumeThenSubscribeOnOpen: the seed's client subscribes in onopen.
// Reconnecting with only last_event_id in the URL and subscribing again the
// same way still replays what was missed on those channels, in order.
func TestWSResumeThenSubscribeOnOpen(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	subscribe := map[string]any{"action": "subscribe", "channels": []string{"tareas"}}

	ws := ts.dialWS(t, query("user_id", "user123"))
	ws.Send(t, subscribe)
	ws.Ready(t)
	ws.NextEvent(t, "subscribed")
	first := ts.send(t, map[string]any{"title": "before", "channels": []string{"tareas"}})
	got := ws.NextEvent(t, "notification")
	is.Equal(got["id"], first)
	cursor := got["cursor"].(string)
	ws.Conn.CloseNow()
	streamtest.Eventually(t, "the server to drop the connection", func() bool { return ts.Hub.Len() == 0 })

	missed := []string{
		ts.send(t, map[string]any{"title": "broadcast", "channels": []string{"tareas"}}),
		ts.send(t, map[string]any{"title": "mine, on tareas", "user_id": "user123", "channels": []string{"tareas"}}),
		ts.send(t, map[string]any{"title": "mine", "user_id": "user123"}),
	}
	ts.send(t, map[string]any{"title": "elsewhere", "channels": []string{"finanzas"}})

	ws = ts.dialWS(t, query("user_id", "user123", "last_event_id", cursor))
	ws.Send(t, subscribe)
	ready := ws.Ready(t)
	is.Equal(ready["channels"], []any{"tareas"}) // what the replay covered
	is.Equal(streamtest.IDs(ws.NextNotifications(t, len(missed))), missed)
	ws.NextEvent(t, "subscribed")
	live := ts.send(t, map[string]any{"title": "live", "channels": []string{"tareas"}})
	ws.NextNotification(t, live)
}

// replayHeldBus holds Replay until released, so a test can change a
// connection's channels and publish while it catches up.
type replayHeldBus struct {
	broker.Bus
	entered chan struct{}
	release chan struct{}
	// after holds the call once the inner Replay has answered rather than
	// before it starts.
	after bool
}

func (b *replayHeldBus) Replay(ctx context.Context, connID string, after broker.Cursor) ([]*broker.Frame, error) {
	if !b.after {
		close(b.entered)
		<-b.release
		return b.Bus.Replay(ctx, connID, after)
	}
	frames, err := b.Bus.Replay(ctx, connID, after)
	close(b.entered)
	<-b.release
	return frames, err
}

// TestSubscribeDuringCatchUpLosesNothing: a channel subscribed while a
// connection catches up is either replayed or delivered live, whichever
// side of the catch-up the subscription falls on; never neither.
func TestSubscribeDuringCatchUpLosesNothing(t *testing.T) {
	for _, after := range []bool{false, true} {
		name := "subscribed before the replay reads"
		if after {
			name = "subscribed after the replay read"
		}
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			held := &replayHeldBus{entered: make(chan struct{}), release: make(chan struct{}), after: after}
			ts := newTestServer(t, wrapBus(func(b broker.Bus) broker.Bus { held.Bus = b; return held }))
			head, err := ts.Bus.Head(t.Context())
			is.NoErr(err)

			c := ts.dialSSE(t, query("user_id", "alice", "last_event_id", head.String()))
			<-held.entered
			// The ready event is held back with the replay; the connect
			// audit record already names the connection.
			connects := ts.Logs.Records("connect")
			is.Equal(len(connects), 1)
			connID := connects[0]["connection_id"].(string)
			status, sub, _ := ts.do(t, http.MethodPost, "/api/v1/connections/"+connID+"/subscribe", map[string]any{"channels": []string{"x"}})
			is.Equal(status, http.StatusOK)
			is.Equal(sub["channels"], []any{"x"})
			onX := ts.send(t, map[string]any{"title": "on x", "channels": []string{"x"}})
			toAlice := ts.send(t, map[string]any{"title": "to alice", "user_id": "alice"})
			close(held.release)

			c.Ready(t)
			var ids []string
			for len(ids) < 2 {
				if f := c.Next(t); f.Event() == "notification" {
					ids = append(ids, f.ID())
				}
			}
			is.Equal(ids, []string{onX, toAlice})
		})
	}
}

// TestWSBadHandshakeAnswersJSON: what websocket.Accept would answer in plain
// text is answered in the API's JSON error shape.
func TestWSBadHandshakeAnswersJSON(t *testing.T) {
	restricted := func(o *testConfig) {
		o.AllowedOrigins = []string{"https://app.example"}
	}
	handshake := []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"}
	cases := []struct {
		name    string
		headers []string
		status  int
		code    string
	}{
		{"plain GET", nil, http.StatusUpgradeRequired, "websocket_required"},
		{"old version", append(append([]string{}, handshake[:6]...), "Sec-WebSocket-Version", "8"), http.StatusUpgradeRequired, "websocket_version"},
		{"foreign origin", append(append([]string{}, handshake...), "Origin", "https://evil.example"), http.StatusForbidden, "origin_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ts := newTestServer(t, restricted)
			status, body, hdr := ts.do(t, http.MethodGet, "/ws?"+query("user_id", "u"), nil, tc.headers...)
			is.Equal(status, tc.status)
			is.Equal(hdr.Get("Content-Type"), "application/json")
			is.Equal(body["error"].(map[string]any)["code"], tc.code)
			is.Equal(ts.Hub.Len(), 0)
		})
	}
	t.Run("allowed origin upgrades", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t, restricted)
		u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws?" + query("user_id", "u")
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://app.example"}}})
		is.NoErr(err)
		c.CloseNow()
	})
}
