package transport_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
	"notification-service/presence"
	"notification-service/pusher"
	"notification-service/store"
	"notification-service/transport"
)

// The Pusher protocol's bounds and the ends of a Pusher connection: frame
// size, channels per connection, connections per user, presence members,
// heartbeats, shutdown, and what a connection that ends gives back.

// A frame over MAX_FRAME_BYTES ends the connection (1009): a client
// cannot make the server buffer more than that.
func TestPusherOversizedFrameCloses(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher, func(c *testConfig) { c.MaxFrameBytes = 1024 })
	c := ts.dialPusher(t)
	c.send(t, "client-typing", strings.Repeat("x", 2048), "private-chat.1")
	is.Equal(c.Closed(t), websocket.StatusMessageTooBig)
	streamtest.Eventually(t, "the disconnect audited", func() bool { return len(ts.disconnects()) == 1 })
	is.Equal(ts.disconnects(), []string{"frame_too_large"})
}

// Past MAX_CHANNELS_PER_CONNECTION a subscription is refused and the
// connection keeps the channels it has.
func TestPusherChannelBound(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher, func(c *testConfig) { c.MaxChannels = 2 })
	c := ts.dialPusher(t)
	c.subscribed(t, "tareas", "")
	c.subscribed(t, "private-orders.1", "1")
	c.subscribeAs(t, "avisos", "")
	is.Equal(c.subscriptionRefused(t, "avisos", pusher.NoCode), float64(http.StatusBadRequest))
	c.subscribed(t, "tareas", "") // a repeat is no new channel
	id := ts.send(t, map[string]any{"type": "tarea.creada", "title": "t", "channels": []string{"tareas", "avisos"}})
	is.Equal(pusherData(t, c.NextEvent(t, "tarea.creada"))["id"], id) // once: on tareas only
	c.alive(t)
}

// A connection takes one of its user's MAX_CONNECTIONS_PER_USER slots when
// it subscribes to the user's channel, and gives it back when it leaves it
// or ends.
func TestPusherUserConnectionBound(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher, func(c *testConfig) { c.MaxConnectionsPerUser = 1 })
	const userChannel = "private-App.Models.User.42"
	first := ts.dialPusher(t)
	first.subscribed(t, userChannel, "42")
	second := ts.dialPusher(t)
	second.subscribeAs(t, userChannel, "42")
	is.Equal(second.subscriptionRefused(t, userChannel, pusher.CodeOverCapacity), float64(http.StatusTooManyRequests))
	second.alive(t)

	// The user's notifications reach the connection that holds the slot.
	id := ts.send(t, map[string]any{"user_id": "42", "type": "invoice.paid", "title": "Paid"})
	is.Equal(pusherData(t, first.NextEvent(t, laravelNotificationEvent))["id"], id)

	// Leaving the channel gives the slot back.
	first.send(t, pusher.EventUnsubscribe, map[string]any{"channel": userChannel}, "")
	first.alive(t) // the unsubscribe is done
	second.subscribed(t, userChannel, "42")
	// Ending the connection does too (it is audited as disconnected once
	// it has given back what it held).
	second.Close()
	streamtest.Eventually(t, "the connection ended", func() bool { return len(ts.disconnects()) == 1 })
	ts.dialPusher(t).subscribed(t, userChannel, "42")
}

// RATE_CONNECTS_PER_USER applies to an Echo connection when it takes its
// user (subscribes to the user's channel), from the same allowance as /sse
// and /ws: refused with 4100 as over the user's connection bound (audited
// as denied, rate_limited, as on /sse and /ws); the connection stays, and
// other users are not affected.
func TestPusherUserConnectRate(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher, func(c *testConfig) {
		c.Rates.ConnectsPerUser = transport.Rate{PerSecond: 0.001, Burst: 2}
	})
	const userChannel = "private-App.Models.User.42"
	ts.dialSSE(t, query("user_id", "42")).Ready(t) // one of user 42's two
	first := ts.dialPusher(t)
	first.subscribed(t, userChannel, "42") // the other
	second := ts.dialPusher(t)
	second.subscribeAs(t, userChannel, "42")
	is.Equal(second.subscriptionRefused(t, userChannel, pusher.CodeOverCapacity), float64(http.StatusTooManyRequests))
	second.alive(t)

	denied := ts.Logs.Records("denied")
	is.Equal(len(denied), 1)
	is.Equal(denied[0]["code"], "rate_limited")
	is.Equal(denied[0]["user_id"], "42")

	// /sse draws on the allowance the adoption spent.
	status, body, hdr := ts.do(t, http.MethodGet, "/sse?"+query("user_id", "42"), nil)
	apiWantError(t, status, body, hdr, http.StatusTooManyRequests, "rate_limited", "")
	is.Equal(len(ts.Logs.Records("denied")), 2) // audited there too
	// Another user's channel is taken on the same connection.
	second.subscribed(t, "private-App.Models.User.43", "43")
}

const laravelNotificationEvent = `Illuminate\Notifications\Events\BroadcastNotificationCreated`

// A presence channel holds PRESENCE_MAX_MEMBERS users; another user is
// refused, another connection of a member is not.
func TestPusherPresenceFull(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher, func(c *testConfig) { c.Presence = presence.NewMemory(2) })
	const room = "presence-room.1"
	ana, ben := ts.dialPusher(t), ts.dialPusher(t)
	ana.subscribed(t, room, "ana")
	ben.subscribed(t, room, "ben")
	is.Equal(memberAdded(t, ana), "ben")
	cleo := ts.dialPusher(t)
	cleo.subscribeAs(t, room, "cleo")
	is.Equal(cleo.subscriptionRefused(t, room, pusher.NoCode), float64(http.StatusForbidden))
	anaAgain := ts.dialPusher(t)
	members := pusherData(t, anaAgain.subscribed(t, room, "ana"))["presence"].(map[string]any)
	is.Equal(members["count"], float64(2))
	is.Equal(members["ids"], []any{"ana", "ben"})
}

// memberAdded reads pusher_internal:member_added and returns its user id.
func memberAdded(t testing.TB, c *pusherClient) any {
	t.Helper()
	return pusherData(t, c.NextEvent(t, "pusher_internal:member_added"))["user_id"]
}

// A client that answers neither WebSocket pings nor pusher:ping is closed
// with 4201 (pusher-js reconnects at once); one that answers pusher:ping
// alone is kept.
func TestPusherHeartbeat(t *testing.T) {
	// The pong timeout is ten heartbeats long so that a loaded machine's
	// pause between a ping and its pong cannot pass for silence.
	const pongTimeout = 500 * time.Millisecond
	ts := newTestServer(t, withPusher, func(c *testConfig) {
		c.HeartbeatInterval = 50 * time.Millisecond
		c.PongTimeout = pongTimeout
	})
	t.Run("silent", func(t *testing.T) {
		is := is.New(t)
		c := dialDeaf(t, ts)
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout) // fails, not hangs, if never closed
		defer cancel()
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				is.Equal(websocket.CloseStatus(err), websocket.StatusCode(pusher.CodePongTimeout))
				return
			}
			is.True(strings.Contains(string(msg), "pusher:")) // pings, nothing else
		}
	})
	t.Run("pusher:pong", func(t *testing.T) {
		is := is.New(t)
		c := dialDeaf(t, ts)
		// Kept for more than three pong timeouts, answering pusher:ping only.
		for start := time.Now(); time.Since(start) < 3*pongTimeout+100*time.Millisecond; {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			_, msg, err := c.Read(ctx)
			cancel()
			is.NoErr(err)
			var m struct{ Event string }
			is.NoErr(json.Unmarshal(msg, &m))
			if m.Event == pusher.EventPing {
				is.NoErr(c.Write(context.Background(), websocket.MessageText, pusher.AppendPong(nil)))
			}
		}
	})
}

// dialDeaf connects a client that leaves WebSocket pings unanswered, and
// reads connection_established.
func dialDeaf(t *testing.T, ts *testServer) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, ts.pusherURL(testPusherApp.Key, pusherQuery), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { return false },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	_, msg, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(msg), "pusher:connection_established") {
		t.Fatalf("handshake: %s, %v", msg, err)
	}
	return c
}

// Shutdown closes Pusher connections with 4200: pusher-js reconnects at
// once, to this instance's successor or another one.
func TestPusherShutdownCloses4200(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher)
	c := ts.dialPusher(t)
	c.subscribed(t, "tareas", "")
	ts.Transport.CloseStreams()
	is.Equal(c.Closed(t), websocket.StatusCode(pusher.CodeReconnect))
	streamtest.Eventually(t, "the disconnect audited", func() bool { return len(ts.disconnects()) == 1 })
	is.Equal(ts.disconnects(), []string{"server_shutdown"})
}

// A connection that ends because its writes fail (a slow consumer, a peer
// gone) still leaves its presence channels and gives its user's slot back:
// the others see member_removed, and the user can connect again.
func TestPusherEndedByAFailedWriteLeaves(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher, slowPeers(8), func(c *testConfig) { c.MaxConnectionsPerUser = 1 })
	const room, userChannel = "presence-room.1", "private-App.Models.User.42"

	slow := &pusherClient{WS: streamtest.DialWSNoRead(t, ts.pusherURL(testPusherApp.Key, pusherQuery))}
	slow.socketID = pusherData(t, slow.ReadOne(t))["socket_id"].(string)
	slow.subscribeAs(t, userChannel, "42")
	slow.subscribeAs(t, room, "42")
	for range 2 {
		is.Equal(slow.ReadOne(t).Event(), "pusher_internal:subscription_succeeded")
	}
	watcher := ts.dialPusher(t)
	watcher.subscribed(t, room, "7")

	// The slow client reads nothing more: big notifications fill its
	// socket, then its queue.
	blob := strings.Repeat("x", 512<<10)
	for i := 0; len(ts.disconnects()) == 0; i++ {
		if i > 1000 {
			t.Fatal("the slow client was never let go")
		}
		ts.send(t, map[string]any{"user_id": "42", "title": fmt.Sprint(i), "data": map[string]any{"blob": blob}})
	}
	is.Equal(ts.disconnects(), []string{"slow_consumer"})

	left := watcher.NextEvent(t, "pusher_internal:member_removed")
	is.Equal(pusherData(t, left)["user_id"], "42")
	again := ts.dialPusher(t)
	again.subscribed(t, userChannel, "42")
	again.subscribed(t, room, "42")
	is.Equal(memberAdded(t, watcher), "42")
}

// heldJoinStore holds each Join until release is closed, after telling
// joining: a presence store slow to answer.
type heldJoinStore struct {
	presence.Store
	joining chan struct{}
	release chan struct{}
}

func (s *heldJoinStore) Join(ctx context.Context, channel, connID string, m presence.Member) ([]presence.Member, bool, error) {
	s.joining <- struct{}{}
	<-s.release
	return s.Store.Join(ctx, channel, connID, m)
}

// A connection that ends while its presence join is under way (a kick:
// shutdown here, a slow consumer or a missed pong alike) is not left a
// member when the join completes: its user would never leave.
func TestPusherEndedDuringAPresenceJoinLeaves(t *testing.T) {
	is := is.New(t)
	members := presence.NewMemory(100)
	held := &heldJoinStore{Store: members, joining: make(chan struct{}, 1), release: make(chan struct{})}
	ts := newTestServer(t, withPusher, func(c *testConfig) { c.Presence = held })
	c := ts.dialPusher(t)
	c.subscribeAs(t, "presence-room.1", "ana")
	<-held.joining
	ts.Transport.CloseStreams()
	is.Equal(c.Closed(t), websocket.StatusCode(pusher.CodeReconnect))
	close(held.release)
	streamtest.Eventually(t, "the disconnect audited", func() bool { return len(ts.disconnects()) == 1 })
	left, err := members.Members(context.Background(), "presence-room.1")
	is.NoErr(err)
	is.Equal(len(left), 0) // ana is not left behind
}

// lostAnswerStore records each Join and then fails it as a Redis store
// does when the answer, not the command, was lost.
type lostAnswerStore struct{ presence.Store }

func (s lostAnswerStore) Join(ctx context.Context, channel, connID string, m presence.Member) ([]presence.Member, bool, error) {
	_, _, _ = s.Store.Join(ctx, channel, connID, m)
	return nil, false, fmt.Errorf("presence: join: %w", store.ErrUnavailable)
}

// A presence join that failed may have taken effect (presence.Store says
// so): the refused subscription is undone, or the user would stay a
// member, unannounced, for as long as the instance lives.
func TestPusherFailedPresenceJoinIsUndone(t *testing.T) {
	is := is.New(t)
	members := presence.NewMemory(100)
	ts := newTestServer(t, withPusher, func(c *testConfig) { c.Presence = lostAnswerStore{members} })
	c := ts.dialPusher(t)
	c.subscribeAs(t, "presence-room.1", "ana")
	is.Equal(c.subscriptionRefused(t, "presence-room.1", pusher.NoCode), float64(http.StatusServiceUnavailable))
	left, err := members.Members(context.Background(), "presence-room.1")
	is.NoErr(err)
	is.Equal(len(left), 0)
	c.alive(t)
}
