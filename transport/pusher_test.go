package transport_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
	"notification-service/pusher"
	"notification-service/transport"
)

// The Pusher Channels protocol at GET /app/{key}, with a real WebSocket
// client speaking it as pusher-js does: what the e2e tests with the real
// pusher-js and laravel-echo cover poorly (the handshake's refusals, hostile
// frames, the bounds, heartbeats and shutdown). Messages are read as
// streamtest frames: each names its "event".

// pusherQuery is the query pusher-js 8 connects with.
const pusherQuery = "protocol=7&client=js&version=8.6.0&flash=false"

// pusherURL is the WebSocket URL of app key with query.
func (ts *testServer) pusherURL(key, query string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/app/" + key + "?" + query
}

// pusherClient is one Pusher connection, past its handshake.
type pusherClient struct {
	*streamtest.WS
	socketID string
}

// dialPusher connects as pusher-js does and reads
// pusher:connection_established.
func (ts *testServer) dialPusher(t *testing.T) *pusherClient {
	t.Helper()
	ws := streamtest.DialWS(t, ts.pusherURL(testPusherApp.Key, pusherQuery))
	data := pusherData(t, ws.NextEvent(t, "pusher:connection_established"))
	id, _ := data["socket_id"].(string)
	return &pusherClient{WS: ws, socketID: id}
}

// pusherData decodes a server message's data, which the protocol sends as
// a JSON string holding JSON.
func pusherData(t testing.TB, f streamtest.Frame) map[string]any {
	t.Helper()
	raw, ok := f["data"].(string)
	if !ok {
		t.Fatalf("%v: data is not a string", map[string]any(f))
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("%v: data is not JSON: %v", map[string]any(f), err)
	}
	return m
}

// send writes one message, {"event", "data"[, "channel"]}.
func (c *pusherClient) send(t testing.TB, event string, data any, channel string) {
	t.Helper()
	msg := map[string]any{"event": event, "data": data}
	if channel != "" {
		msg["channel"] = channel
	}
	c.Send(t, msg)
}

// subscribeAs asks for ch as Laravel's /broadcasting/auth would authorize
// user there: signed for private and presence channels, with channel_data
// naming user on presence ones.
func (c *pusherClient) subscribeAs(t testing.TB, ch, user string) {
	t.Helper()
	data := map[string]any{"channel": ch}
	var channelData string
	if pusher.KindOf(ch) == pusher.Presence {
		enc, _ := json.Marshal(map[string]any{"user_id": user, "user_info": map[string]any{"name": "User " + user}})
		channelData = string(enc)
		data["channel_data"] = channelData
	}
	if pusher.KindOf(ch).NeedsAuth() {
		data["auth"] = pusher.ChannelAuth(testPusherApp, c.socketID, ch, channelData)
	}
	c.send(t, pusher.EventSubscribe, data, "")
}

// subscribed subscribes to ch as user and reads the success.
func (c *pusherClient) subscribed(t testing.TB, ch, user string) streamtest.Frame {
	t.Helper()
	c.subscribeAs(t, ch, user)
	f := c.NextEvent(t, "pusher_internal:subscription_succeeded")
	if f["channel"] != ch {
		t.Fatalf("subscription_succeeded for %v, want %s", f["channel"], ch)
	}
	return f
}

// refused reads a pusher:error with code (pusher.NoCode: null) and returns
// its message.
func (c *pusherClient) refused(t testing.TB, code pusher.Code) string {
	t.Helper()
	f := c.NextEvent(t, "pusher:error")
	data, ok := f["data"].(map[string]any)
	if !ok {
		t.Fatalf("pusher:error data is not an object: %v", map[string]any(f))
	}
	want := any(nil)
	if code != pusher.NoCode {
		want = float64(code)
	}
	if data["code"] != want {
		t.Fatalf("pusher:error code %v (%v), want %v", data["code"], data["message"], want)
	}
	msg, _ := data["message"].(string)
	return msg
}

// subscriptionRefused reads what a refused subscription gets: a
// pusher:error with code, then pusher:subscription_error on ch (Echo's
// .error()), whose status it returns.
func (c *pusherClient) subscriptionRefused(t testing.TB, ch string, code pusher.Code) float64 {
	t.Helper()
	c.refused(t, code)
	f := c.NextEvent(t, "pusher:subscription_error")
	if f["channel"] != ch {
		t.Fatalf("subscription_error for %v, want %s", f["channel"], ch)
	}
	status, _ := pusherData(t, f)["status"].(float64)
	return status
}

// alive proves the connection still answers: pusher:ping gets pusher:pong.
func (c *pusherClient) alive(t testing.TB) {
	t.Helper()
	c.send(t, pusher.EventPing, map[string]any{}, "")
	c.NextEvent(t, "pusher:pong")
}

var socketIDPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

func TestPusherHandshake(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher)
	c := ts.dialPusher(t)
	is.True(socketIDPattern.MatchString(c.socketID)) // a Pusher socket id: what toOthers names
	c.alive(t)
}

// The handshake's refusals come as the protocol's: a pusher:error, then the
// same code as the close code (pusher-js reads either).
func TestPusherHandshakeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, key, query string
		code             pusher.Code
	}{
		{"unknown app key", "not-the-key", pusherQuery, pusher.CodeAppNotFound},
		{"no protocol", testPusherApp.Key, "client=js", pusher.CodeNoProtocol},
		{"protocol not a number", testPusherApp.Key, "protocol=seven", pusher.CodeInvalidVersion},
		{"protocol too new", testPusherApp.Key, "protocol=8", pusher.CodeUnsupportedProtocol},
		{"protocol too old", testPusherApp.Key, "protocol=3", pusher.CodeUnsupportedProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ts := newTestServer(t, withPusher)
			ws := streamtest.DialWS(t, ts.pusherURL(tc.key, tc.query))
			c := &pusherClient{WS: ws}
			c.refused(t, tc.code)
			is.Equal(ws.Closed(t), websocket.StatusCode(tc.code))
			streamtest.Eventually(t, "no connection left", func() bool { return ts.Hub.Len() == 0 })
		})
	}
	t.Run("no app configured", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t)
		ws := streamtest.DialWS(t, ts.pusherURL(testPusherApp.Key, pusherQuery))
		(&pusherClient{WS: ws}).refused(t, pusher.CodeAppNotFound)
		is.Equal(ws.Closed(t), websocket.StatusCode(pusher.CodeAppNotFound))
	})
}

// A page from an origin not in ALLOWED_ORIGINS is refused before the
// upgrade, as /ws refuses it: 403, no WebSocket.
func TestPusherRefusesAnotherOrigin(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher, func(c *testConfig) { c.AllowedOrigins = []string{"https://app.example"} })
	dial := func(origin string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		return websocket.Dial(ctx, ts.pusherURL(testPusherApp.Key, pusherQuery), &websocket.DialOptions{
			HTTPHeader: http.Header{"Origin": {origin}},
		})
	}
	_, resp, err := dial("https://evil.example")
	is.True(err != nil)
	is.Equal(resp.StatusCode, http.StatusForbidden)
	is.Equal(ts.Hub.Len(), 0)

	ws, _, err := dial("https://app.example")
	is.NoErr(err)
	defer ws.CloseNow()
	_, msg, err := ws.Read(context.Background())
	is.NoErr(err)
	is.True(strings.Contains(string(msg), "pusher:connection_established"))
}

// Over the connect rate of its address, a client is told 4100 (back off,
// then reconnect), in the protocol's terms rather than an HTTP 429 it
// cannot read.
func TestPusherConnectRate(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher, func(c *testConfig) {
		c.Rates.ConnectsPerAddr = transport.Rate{PerSecond: 0.001, Burst: 1}
	})
	ts.dialPusher(t).alive(t)
	ws := streamtest.DialWS(t, ts.pusherURL(testPusherApp.Key, pusherQuery))
	msg := (&pusherClient{WS: ws}).refused(t, pusher.CodeOverCapacity)
	is.True(msg != "")
	is.Equal(ws.Closed(t), websocket.StatusCode(pusher.CodeOverCapacity))
}

// Bad frames are answered with a pusher:error and the connection stays,
// with its channels.
func TestPusherBadFramesKeepTheConnection(t *testing.T) {
	ts := newTestServer(t, withPusher)
	c := ts.dialPusher(t)
	c.subscribed(t, "tareas", "")
	c.subscribed(t, "private-orders.1", "1")
	for _, tc := range []struct {
		name  string
		write func(t *testing.T)
		code  pusher.Code
		says  string
	}{
		{"invalid JSON", func(t *testing.T) { c.writeRaw(t, websocket.MessageText, `{"event":`) }, pusher.NoCode, "JSON"},
		{"binary frame", func(t *testing.T) { c.writeRaw(t, websocket.MessageBinary, `{"event":"pusher:ping","data":{}}`) }, pusher.NoCode, "text"},
		{"no event", func(t *testing.T) { c.writeRaw(t, websocket.MessageText, `{"data":{}}`) }, pusher.NoCode, "event"},
		{"unknown event", func(t *testing.T) { c.send(t, "pusher:signin", map[string]any{}, "") }, pusher.NoCode, "pusher:signin"},
		{"invalid channel name", func(t *testing.T) {
			c.send(t, pusher.EventSubscribe, map[string]any{"channel": "tareas nuevas!"}, "")
		}, pusher.NoCode, "not a valid channel name"},
		{"client event on a public channel", func(t *testing.T) {
			c.send(t, "client-typing", map[string]any{}, "tareas")
		}, pusher.NoCode, "private and presence channels only"},
		{"client event on a channel not subscribed", func(t *testing.T) {
			c.send(t, "client-typing", map[string]any{}, "private-orders.2")
		}, pusher.NoCode, "subscribe to private-orders.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			tc.write(t)
			is.True(strings.Contains(c.refused(t, tc.code), tc.says))
			c.alive(t)
		})
	}
	// The channels held before all that still deliver.
	id := ts.send(t, map[string]any{"type": "order.shipped", "title": "Shipped", "channels": []string{"private-orders.1"}})
	f := c.NextEvent(t, "order.shipped")
	is.New(t).Equal(pusherData(t, f)["id"], id)
}

// writeRaw writes one WebSocket message as is.
func (c *pusherClient) writeRaw(t testing.TB, typ websocket.MessageType, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Conn.Write(ctx, typ, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// Subscriptions the signatures do not allow are refused, as Echo's
// .error() sees them, and leave the connection as it was.
func TestPusherRefusedSubscriptions(t *testing.T) {
	ts := newTestServer(t, withPusher)
	c := ts.dialPusher(t)
	other := ts.dialPusher(t)
	forged := pusher.App{ID: testPusherApp.ID, Key: testPusherApp.Key, Secret: "not-the-app-secret-0123456789"}
	for _, tc := range []struct {
		name string
		data map[string]any
	}{
		{"no auth", map[string]any{"channel": "private-orders.1"}},
		{"signed with another secret", map[string]any{"channel": "private-orders.1", "auth": pusher.ChannelAuth(forged, c.socketID, "private-orders.1", "")}},
		{"signed for another socket", map[string]any{"channel": "private-orders.1", "auth": pusher.ChannelAuth(testPusherApp, other.socketID, "private-orders.1", "")}},
		{"signed for another channel", map[string]any{"channel": "private-orders.1", "auth": pusher.ChannelAuth(testPusherApp, c.socketID, "private-orders.2", "")}},
		{"presence without channel_data", map[string]any{"channel": "presence-room.1", "auth": pusher.ChannelAuth(testPusherApp, c.socketID, "presence-room.1", "")}},
		{"presence channel_data not the signed one", map[string]any{"channel": "presence-room.1",
			"auth":         pusher.ChannelAuth(testPusherApp, c.socketID, "presence-room.1", `{"user_id":"1"}`),
			"channel_data": `{"user_id":"2"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			c.send(t, pusher.EventSubscribe, tc.data, "")
			is.Equal(c.subscriptionRefused(t, tc.data["channel"].(string), pusher.CodeUnauthorized), float64(http.StatusUnauthorized))
			c.alive(t)
		})
	}
	is := is.New(t)
	is.Equal(len(ts.Logs.Records("denied")), 6) // each audited
	sub, ok := ts.Hub.Connection(c.socketID)
	is.True(ok)
	is.Equal(len(sub.Channels), 0)
}

// A presence subscription whose channel_data the service cannot take
// (signed, but its user_info over the bound, or no user_id) is refused as
// every other subscription is: Echo's .error() must hear of it, or the
// channel waits forever.
func TestPusherPresenceChannelDataRefused(t *testing.T) {
	ts := newTestServer(t, withPusher)
	c := ts.dialPusher(t)
	for _, tc := range []struct{ name, channelData string }{
		{"user_info over the bound", `{"user_id":"1","user_info":{"bio":"` + strings.Repeat("x", 3000) + `"}}`},
		{"no user_id", `{"user_info":{"name":"Ana"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			c.send(t, pusher.EventSubscribe, map[string]any{
				"channel":      "presence-room.1",
				"auth":         pusher.ChannelAuth(testPusherApp, c.socketID, "presence-room.1", tc.channelData),
				"channel_data": tc.channelData,
			}, "")
			is.Equal(c.subscriptionRefused(t, "presence-room.1", pusher.NoCode), float64(http.StatusBadRequest))
			c.alive(t)
		})
	}
}

// Presence on one instance, as the protocol defines it: the joining
// connection lists the members, the others hear member_added once per
// user; pusher:unsubscribe of a user's last connection is member_removed;
// client events carry the sender's user_id, and never return to it.
func TestPusherPresence(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher)
	const room = "presence-room.1"
	ana := ts.dialPusher(t)
	ana.subscribed(t, room, "ana")
	ben := ts.dialPusher(t)
	here := pusherData(t, ben.subscribed(t, room, "ben"))["presence"].(map[string]any)
	is.Equal(here["ids"], []any{"ana", "ben"})
	is.Equal(here["hash"], map[string]any{"ana": map[string]any{"name": "User ana"}, "ben": map[string]any{"name": "User ben"}})
	is.Equal(memberAdded(t, ana), "ben")

	benAgain := ts.dialPusher(t)
	benAgain.subscribed(t, room, "ben") // no member_added: ben is there already
	benAgain.send(t, "client-typing", map[string]any{"n": 1}, room)
	for _, c := range []*pusherClient{ana, ben} {
		f := c.NextEvent(t, "client-typing")
		is.Equal(f["user_id"], "ben")
		is.Equal(pusherData(t, f), map[string]any{"n": float64(1)})
	}
	benAgain.alive(t) // its own whisper did not come back before the pong

	ben.send(t, pusher.EventUnsubscribe, map[string]any{"channel": room}, "")
	ben.alive(t)
	benAgain.send(t, pusher.EventUnsubscribe, map[string]any{"channel": room}, "")
	is.Equal(pusherData(t, ana.NextEvent(t, "pusher_internal:member_removed"))["user_id"], "ben")
	ana.alive(t) // nothing between: one member_removed, not two
}
