package transport_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"

	"notification-service/broker"
	"notification-service/inbox"
)

func TestSSEFraming(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "alice", "channels", "news"))
	is.Equal(sse.Resp.StatusCode, http.StatusOK)
	is.Equal(sse.Resp.Header.Get("Content-Type"), "text/event-stream")

	ev := sse.NextRaw(t)        // the framing itself: read raw
	is.Equal(ev.Event, "ready") // control events are named
	is.Equal(ev.Retry, "2000")
	ready := ev.JSON(t)
	is.Equal(ready["event"], "ready")
	is.Equal(ready["user_id"], "alice")
	is.Equal(ready["channels"], []any{"news"})
	connID, _ := ready["connection_id"].(string)
	is.True(connID != "")
	is.True(ev.ID != "") // ready carries the head as id, so a reconnect before any notification resumes
	is.Equal(ready["cursor"], ev.ID)
	readySeq := cursorSeq(t, ev.ID)

	id := ts.send(t, map[string]any{"type": "order", "title": "Shipped", "message": "m", "user_id": "alice", "data": map[string]any{"order": 42}})
	ev = sse.NextRaw(t)
	is.Equal(ev.Event, "") // default type: EventSource.onmessage sees it
	n := ev.JSON(t)
	is.Equal(n["event"], "notification")
	is.Equal(n["id"], id)
	is.Equal(n["type"], "order")
	is.Equal(n["title"], "Shipped")
	is.Equal(n["user_id"], "alice")
	is.Equal(n["data"], map[string]any{"order": float64(42)})
	is.Equal(ev.ID, n["cursor"])
	is.True(cursorSeq(t, ev.ID) > readySeq)

	bid := ts.send(t, map[string]any{"title": "Breaking", "channels": []string{"news"}})
	ev = sse.NextRaw(t)
	is.Equal(ev.Event, "")
	n = ev.JSON(t)
	is.Equal(n["id"], bid)
	is.Equal(n["channels"], []any{"news"})
	_, hasUser := n["user_id"]
	is.True(!hasUser) // broadcasts carry no user
	is.Equal(ev.ID, n["cursor"])

	// A control event is named and carries no id: it must not move the
	// browser's Last-Event-ID.
	status, _, _ := ts.do(t, http.MethodPost, "/api/v1/connections/"+connID+"/subscribe", map[string]any{"channels": []string{"tech"}})
	is.Equal(status, http.StatusOK)
	ev = sse.NextRaw(t)
	is.Equal(ev.Event, "subscribed")
	is.Equal(ev.ID, "")
	sub := ev.JSON(t)
	is.Equal(sub["event"], "subscribed")
	is.Equal(sub["channels"], []any{"tech"})
	is.Equal(sub["subscriptions"], []any{"news", "tech"})
	tid := ts.send(t, map[string]any{"title": "On tech", "channels": []string{"tech"}})
	sse.NextNotification(t, tid)
}

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

// TestRoutingEndToEnd: the routing rule through real clients on both
// transports, each frame checked in order with a marker at the end, so a
// duplicate or a stray notification shows up before it.
func TestRoutingEndToEnd(t *testing.T) {
	for _, kind := range []string{"sse", "ws"} {
		t.Run(kind, func(t *testing.T) {
			is := is.New(t)
			ts := newTestServer(t)
			c := ts.dialStream(t, kind, query("user_id", "alice", "channels", "a,b"), "")
			c.Ready(t)

			var want []string
			for _, step := range []struct {
				body map[string]any
				gets bool
			}{
				{map[string]any{"title": "on a and b", "channels": []string{"a", "b"}}, true},
				{map[string]any{"title": "on c", "channels": []string{"c"}}, false},
				{map[string]any{"title": "to bob", "user_id": "bob"}, false},
				{map[string]any{"title": "to bob on a", "user_id": "bob", "channels": []string{"a"}}, false},
				{map[string]any{"title": "to alice on c", "user_id": "alice", "channels": []string{"c"}}, false},
				{map[string]any{"title": "to alice on b and a", "user_id": "alice", "channels": []string{"b", "a"}}, true},
				{map[string]any{"title": "to alice and bob", "user_ids": []string{"bob", "alice"}}, true},
				{map[string]any{"title": "on c and b", "channels": []string{"c", "b"}}, true},
				{map[string]any{"title": "to alice", "user_id": "alice"}, true},
			} {
				id := ts.send(t, step.body)
				if step.gets {
					want = append(want, id)
				}
			}
			marker := ts.send(t, map[string]any{"title": "marker", "channels": []string{"a"}})
			want = append(want, marker)

			got := c.NextNotifications(t, len(want))
			is.Equal(streamtest.IDs(got), want)
			checkIncreasing(t, got, 0)
		})
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

func (b *headHeldBus) Subscribe(ctx context.Context, connID string, channels []string) (broker.Subscription, error) {
	b.once.Do(func() { close(b.subscribed) })
	return b.Bus.Subscribe(ctx, connID, channels)
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

// TestResume: a client that drops and reconnects with its last cursor gets
// exactly what it missed, in order, then live notifications.
func TestResume(t *testing.T) {
	for _, kind := range []string{"sse", "sse-query", "ws"} {
		t.Run(kind, func(t *testing.T) {
			is := is.New(t)
			ts := newTestServer(t)
			q := query("user_id", "alice", "channels", "news")
			c := ts.dialStream(t, kind, q, "")
			c.Ready(t)

			seen := []string{
				ts.send(t, map[string]any{"title": "1", "user_id": "alice"}),
				ts.send(t, map[string]any{"title": "2", "channels": []string{"news"}}),
				ts.send(t, map[string]any{"title": "3", "user_id": "alice"}),
			}
			got := c.NextNotifications(t, len(seen))
			is.Equal(streamtest.IDs(got), seen)
			last := got[len(got)-1]
			ts.closeAndWait(t, c)

			var missed []string
			for i := range 16 {
				switch i % 4 {
				case 0:
					missed = append(missed, ts.send(t, map[string]any{"title": "to alice", "user_id": "alice"}))
				case 1:
					missed = append(missed, ts.send(t, map[string]any{"title": "on news", "channels": []string{"news", "other"}}))
				case 2:
					ts.send(t, map[string]any{"title": "to bob", "user_id": "bob"})
					ts.send(t, map[string]any{"title": "on sports", "channels": []string{"sports"}})
					ts.send(t, map[string]any{"title": "to alice on sports", "user_id": "alice", "channels": []string{"sports"}})
				case 3:
					missed = append(missed, ts.send(t, map[string]any{"title": "to alice on news", "user_id": "alice", "channels": []string{"news"}}))
				}
			}

			c = ts.dialStream(t, kind, q, last.Cursor())
			ready := c.Ready(t)
			is.Equal(ready.Cursor(), last.Cursor()) // resumes where the client was
			got = c.NextNotifications(t, len(missed))
			is.Equal(streamtest.IDs(got), missed)
			checkIncreasing(t, got, cursorSeq(t, last.Cursor()))

			live := ts.send(t, map[string]any{"title": "live", "user_id": "alice"})
			c.NextNotification(t, live)

			// Resuming from the newest cursor replays nothing.
			newest := ts.send(t, map[string]any{"title": "newest", "user_id": "alice"})
			c.NextNotification(t, newest)
			ts.closeAndWait(t, c)
			c = ts.dialStream(t, kind, q, ts.lastCursor(t, "alice"))
			c.Ready(t)
			marker := ts.send(t, map[string]any{"title": "marker", "channels": []string{"news"}})
			c.NextNotification(t, marker)
		})
	}
}

// lastCursor is the cursor of the newest notification in userID's inbox.
func (ts *testServer) lastCursor(t *testing.T, userID string) string {
	t.Helper()
	head, err := ts.Bus.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	page, err := ts.Inbox.List(t.Context(), userID, inbox.Query{Limit: 1})
	if err != nil || len(page.Entries) == 0 {
		t.Fatalf("no inbox entry for %s: %v", userID, err)
	}
	return broker.Cursor{Epoch: head.Epoch, Seq: page.Entries[0].Seq}.String()
}

// TestResumeRace reconnects while notifications keep being published, so
// some arrive live while the missed ones are being replayed: the client must
// see every one after its cursor exactly once, in order, with no gap.
func TestResumeRace(t *testing.T) {
	for _, kind := range []string{"sse", "ws"} {
		t.Run(kind, func(t *testing.T) {
			is := is.New(t)
			ts := newTestServer(t, func(o *testConfig) {
				// This test is about exactly-once; a queue overflow would
				// test slow consumers instead.
				o.QueueSize = 8192
			})
			ctx := t.Context()
			subscribed := func(ch string) bool { return ch == "news" }
			// mixed returns the i-th notification of a stream where about
			// two in three reach alice.
			mixed := func(i int) broker.Notification {
				n := broker.Notification{ID: broker.NewID(), Type: "info", Title: fmt.Sprint(i), Timestamp: broker.Now()}
				switch i % 6 {
				case 0, 3:
					n.UserID = "alice"
				case 1, 4:
					n.Channels = []string{"news"}
				case 2:
					n.UserID = "bob"
				case 5:
					n.Channels = []string{"sports"}
				}
				if i%12 == 3 {
					n.Channels = []string{"sports", "news"}
				}
				return n
			}
			var mu sync.Mutex
			var published []broker.Notification
			publish := func(i int) error {
				out, err := ts.Bus.Publish(ctx, mixed(i))
				if err != nil {
					return err
				}
				mu.Lock()
				published = append(published, out...)
				mu.Unlock()
				return nil
			}

			q := query("user_id", "alice", "channels", "news")
			c := ts.dialStream(t, kind, q, "")
			c.Ready(t)
			for i := range 6 {
				is.NoErr(publish(i))
			}
			got := c.NextNotifications(t, 4)
			cursor := got[len(got)-1]

			// Several rounds: the window where live and replayed
			// notifications overlap is short, and each round is another
			// chance to land in it.
			const rounds, missed, racing = 8, 50, 500
			for round := range rounds {
				ts.closeAndWait(t, c)
				base := 6 + round*(missed+racing)
				for i := base; i < base+missed; i++ { // missed while away
					is.NoErr(publish(i))
				}

				// The publisher keeps going while the client reconnects;
				// once the connection is registered it publishes in a
				// tight loop, so live notifications race the replay.
				done := make(chan error, 1)
				go func() {
					deadline := time.Now().Add(waitTimeout)
					for i := base + missed; i < base+missed+racing; i++ {
						if i == base+missed+20 {
							for ts.Hub.Len() == 0 && time.Now().Before(deadline) {
								runtime.Gosched()
							}
						}
						if err := publish(i); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
				c = ts.dialStream(t, kind, q, cursor.Cursor())
				c.Ready(t)
				select {
				case err := <-done:
					is.NoErr(err)
				case <-time.After(2 * waitTimeout):
					t.Fatal("publisher did not finish")
				}

				mu.Lock()
				var want []string
				var wantSeqs []uint64
				for _, n := range published {
					if n.Seq > cursorSeq(t, cursor.Cursor()) && broker.Matches(n, "alice", subscribed) {
						want = append(want, n.ID)
						wantSeqs = append(wantSeqs, n.Seq)
					}
				}
				mu.Unlock()
				got = c.NextNotifications(t, len(want))
				gotSeqs := make([]uint64, len(got))
				for i, ev := range got {
					gotSeqs[i] = cursorSeq(t, ev.Cursor())
				}
				is.Equal(gotSeqs, wantSeqs) // every one after the cursor, once, in order
				is.Equal(streamtest.IDs(got), want)

				// Nothing trails behind: the next frame is a fresh marker.
				marker := ts.send(t, map[string]any{"title": "marker", "user_id": "alice"})
				next := c.NextNotifications(t, 1)
				is.Equal(streamtest.IDs(next), []string{marker})
				cursor = next[0]
			}
			is.Equal(len(ts.disconnects()), rounds) // only the deliberate disconnects
		})
	}
}

// TestResetOnUnusableCursor: a cursor the server cannot honour whole is
// answered with a reset event, never ignored, and the stream then goes
// live from now.
func TestResetOnUnusableCursor(t *testing.T) {
	type setup func(t *testing.T, ts *testServer) string
	cases := []struct {
		name  string
		tweak func(*testConfig)
		// cursor publishes what the case needs and returns the cursor to
		// resume from.
		cursor setup
	}{
		{"unknown epoch", nil, func(t *testing.T, ts *testServer) string {
			head, _ := ts.Bus.Head(t.Context())
			ts.send(t, map[string]any{"title": "x", "user_id": "alice"})
			return broker.Cursor{Epoch: head.Epoch + "0", Seq: 1}.String()
		}},
		{"garbage", nil, func(t *testing.T, ts *testServer) string {
			ts.send(t, map[string]any{"title": "x", "user_id": "alice"})
			return "not a cursor!"
		}},
		{"beyond head", nil, func(t *testing.T, ts *testServer) string {
			ts.send(t, map[string]any{"title": "x", "user_id": "alice"})
			head, _ := ts.Bus.Head(t.Context())
			return broker.Cursor{Epoch: head.Epoch, Seq: head.Seq + 5}.String()
		}},
		{"older than the channel history", func(c *testConfig) {
			c.History.MaxPerChannel = 5
		}, func(t *testing.T, ts *testServer) string {
			head, _ := ts.Bus.Head(t.Context())
			for i := range 20 {
				ts.send(t, map[string]any{"title": fmt.Sprint(i), "channels": []string{"news"}})
			}
			return head.String()
		}},
		{"older than the inbox", func(c *testConfig) {
			c.Inbox.MaxPerUser = 5
		}, func(t *testing.T, ts *testServer) string {
			head, _ := ts.Bus.Head(t.Context())
			for i := range 20 {
				ts.send(t, map[string]any{"title": fmt.Sprint(i), "user_id": "alice"})
			}
			return head.String()
		}},
	}
	for _, kind := range []string{"sse", "sse-query", "ws"} {
		for _, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				is := is.New(t)
				ts := newTestServer(t, tc.tweak)
				cursor := tc.cursor(t, ts)
				head, err := ts.Bus.Head(t.Context())
				is.NoErr(err)

				c := ts.dialStream(t, kind, query("user_id", "alice", "channels", "news"), cursor)
				ready := c.Ready(t)
				// The stream continues from now: the ready cursor is the
				// head, so the browser's next Last-Event-ID is usable.
				is.Equal(ready.Cursor(), head.String())
				reset := c.NextEvent(t, "reset")
				is.Equal(reset, streamtest.Frame{"event": "reset", "reason": "cursor_expired"})
				is.Equal(reset.Cursor(), "")

				// Live delivery works, and nothing from before is replayed.
				id := ts.send(t, map[string]any{"title": "live", "user_id": "alice"})
				bid := ts.send(t, map[string]any{"title": "live", "channels": []string{"news"}})
				got := c.NextNotifications(t, 2)
				is.Equal(streamtest.IDs(got), []string{id, bid})
				checkIncreasing(t, got, head.Seq)
			})
		}
	}
}

// TestSlowConsumer: a client that stops reading is closed as a slow
// consumer at once, without holding up anyone else, and resumes without
// loss.
func TestSlowConsumer(t *testing.T) {
	for _, kind := range []string{"ws", "sse"} {
		t.Run(kind, func(t *testing.T) {
			is := is.New(t)
			ts := newTestServer(t, func(o *testConfig) {
				o.QueueSize = 8
				o.MaxBodyBytes = 1 << 20
				// Far beyond the test's deadlines: the slow consumer must
				// be let go when its queue overflows, not when a write
				// blocked on it times out.
				o.WriteTimeout = time.Minute
			})
			q := query("user_id", "alice", "channels", "news")
			// The slow client reads nothing until the end of the test.
			var slowWS *wsClient
			var slowSSE *sseClient
			if kind == "ws" {
				slowWS = ts.dialWSNoRead(t, q)
			} else {
				slowSSE = ts.dialSSENoRead(t, q)
			}
			fastSSE := ts.dialSSE(t, q)
			fastSSE.Ready(t)
			fastWS := ts.dialWS(t, q)
			fastWS.Ready(t)
			streamtest.Eventually(t, "three connections", func() bool { return ts.Hub.Len() == 3 })

			// Big notifications fill the slow client's socket buffers,
			// then its queue; keep sending until the server gives up on
			// it.
			blob := strings.Repeat("x", 32<<10)
			var ids []string
			sendBig := func(i int) {
				body := map[string]any{"title": fmt.Sprint(i), "data": map[string]any{"blob": blob}}
				if i%2 == 0 {
					body["user_id"] = "alice"
				} else {
					body["channels"] = []string{"news"}
				}
				ids = append(ids, ts.send(t, body))
			}
			start := time.Now()
			for i := 0; ts.Hub.Len() == 3; i++ {
				if i == 4000 || time.Since(start) > 2*waitTimeout {
					t.Fatalf("the slow consumer was never closed (%d sent)", i)
				}
				sendBig(i)
			}
			t.Logf("slow consumer closed after %d notifications of %d KiB in %v", len(ids), len(blob)>>10, time.Since(start))
			for i := range 5 { // and a few after it is gone
				sendBig(len(ids) + i)
			}

			// The fast clients got everything, in order.
			for _, c := range []streamtest.Stream{fastSSE, fastWS} {
				got := c.NextNotifications(t, len(ids))
				is.Equal(streamtest.IDs(got), ids)
				checkIncreasing(t, got, 0)
			}
			// Closed for what it is, not as a write that timed out.
			streamtest.Eventually(t, "the slow consumer's disconnect record", func() bool { return len(ts.disconnects()) > 0 })
			is.Equal(ts.disconnects(), []string{"slow_consumer"})

			// What reached the slow client before it was closed is a
			// prefix, in order; then the stream ends.
			var slow streamtest.Stream
			if kind == "ws" {
				slowWS.StartReading()
				slow = slowWS
			} else {
				slowSSE.StartReading()
				slow = slowSSE
			}
			ready := slow.Ready(t)
			last := ready.Cursor()
			var received []string
			for {
				ev, ok := slow.NextOrEnd(t)
				if !ok {
					break
				}
				if ev.Event() != "notification" {
					// At most a last word saying why, if it got through.
					is.Equal(ev.Event(), "error")
					is.Equal(ev["code"], "slow_consumer")
					continue
				}
				received = append(received, ev.ID())
				last = ev.Cursor()
			}
			if kind == "ws" {
				// 1013 if the close frame got through the full socket,
				// else the connection just ends.
				status := websocket.CloseStatus(slowWS.Err)
				is.True(status == websocket.StatusTryAgainLater || status == -1)
			}
			is.True(len(received) < len(ids))
			is.Equal(received, ids[:len(received)])

			// Resuming from the last cursor it saw gets the rest, in order.
			resumed := ts.dialStream(t, kind, q, last)
			resumed.Ready(t)
			got := resumed.NextNotifications(t, len(ids)-len(received))
			is.Equal(streamtest.IDs(got), ids[len(received):])
			marker := ts.send(t, map[string]any{"title": "marker", "user_id": "alice"})
			resumed.NextNotification(t, marker)
		})
	}
}

func TestSSEHeartbeat(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(o *testConfig) {
		o.HeartbeatInterval = 50 * time.Millisecond
	})
	sse := ts.dialSSE(t, query("user_id", "alice"))
	sse.Ready(t)
	for range 3 {
		select {
		case line := <-sse.Comments:
			is.Equal(line, ": heartbeat")
		case <-time.After(waitTimeout):
			t.Fatal("no heartbeat comment")
		}
	}
	// Heartbeats do not disturb delivery.
	id := ts.send(t, map[string]any{"title": "x", "user_id": "alice"})
	sse.NextNotification(t, id)
}

// TestWSHeartbeatClosesSilentPeer: a peer that never answers pings is closed
// after PongTimeout.
func TestWSHeartbeatClosesSilentPeer(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(o *testConfig) {
		o.HeartbeatInterval = 50 * time.Millisecond
		o.PongTimeout = 100 * time.Millisecond
	})
	ts.dialWSNoRead(t, query("user_id", "alice"))
	streamtest.Eventually(t, "the silent peer to be closed", func() bool {
		return len(ts.Logs.Records("connect")) == 1 && ts.Hub.Len() == 0
	})
	streamtest.Eventually(t, "the disconnect record", func() bool { return len(ts.disconnects()) == 1 })
	is.Equal(ts.disconnects(), []string{"ping_timeout"})
}

// TestWSHeartbeatKeepsLivePeer: a client that reads answers pings and stays
// connected through many intervals, while a silent one beside it is closed.
func TestWSHeartbeatKeepsLivePeer(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(o *testConfig) {
		o.HeartbeatInterval = 50 * time.Millisecond
		o.PongTimeout = time.Second
	})
	ws := ts.dialWS(t, query("user_id", "alice"))
	ws.Ready(t)
	sse := ts.dialSSE(t, query("user_id", "bob"))
	sse.Ready(t)
	ts.dialWSNoRead(t, query("user_id", "carol"))

	// The silent peer is closed after a second of pings, each of which the
	// live peer answered; the SSE heartbeats count the intervals.
	streamtest.Eventually(t, "the silent peer to be closed", func() bool { return len(ts.disconnects()) == 1 })
	is.Equal(ts.disconnects(), []string{"ping_timeout"})
	for range 5 {
		select {
		case <-sse.Comments:
		case <-time.After(waitTimeout):
			t.Fatal("no heartbeat comment")
		}
	}
	is.Equal(ts.Hub.Len(), 2)
	ws.Send(t, map[string]any{"action": "ping"})
	is.Equal(ws.Next(t), streamtest.Frame{"event": "pong"})
	id := ts.send(t, map[string]any{"title": "x", "user_id": "alice"})
	ws.NextNotification(t, id)
	is.Equal(ts.disconnects(), []string{"ping_timeout"})
}

// TestCloseStreams: at shutdown SSE clients get a last "reconnect" event and
// WebSocket clients close status 1012, so both reconnect elsewhere.
func TestCloseStreams(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "alice"))
	sse.Ready(t)
	ws := ts.dialWS(t, query("user_id", "alice"))
	ws.Ready(t)
	streamtest.Eventually(t, "two connections", func() bool { return ts.Hub.Len() == 2 })

	ts.Transport.CloseStreams()

	is.Equal(sse.NextEvent(t, "reconnect")["reason"], "server_shutdown")
	sse.Ended(t)
	is.Equal(ws.Closed(t), websocket.StatusServiceRestart)
	streamtest.Eventually(t, "the hub to empty", func() bool { return ts.Hub.Len() == 0 })
	streamtest.Eventually(t, "two disconnect records", func() bool { return len(ts.disconnects()) == 2 })
	is.Equal(ts.disconnects(), []string{"server_shutdown", "server_shutdown"})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	is.NoErr(ts.Transport.WaitStreams(ctx))
}

// TestNoGoroutineLeak: a thousand connections that come and go leave no
// goroutine and no hub entry behind.
func TestNoGoroutineLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	ts := newTestServer(t)
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws?"

	connectSSE := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/sse?"+query("user_id", fmt.Sprint("u", i%7), "channels", "a,b"), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: ready" {
				return nil
			}
		}
		return fmt.Errorf("sse %d: no ready event: %v", i, sc.Err())
	}
	connectWS := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, wsURL+query("user_id", fmt.Sprint("u", i%7), "channels", "a"), &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			return err
		}
		_, data, err := conn.Read(ctx)
		if err != nil || !strings.Contains(string(data), `"event":"ready"`) {
			conn.CloseNow()
			return fmt.Errorf("ws %d: no ready frame: %v", i, err)
		}
		if i%2 == 0 {
			return conn.Close(websocket.StatusNormalClosure, "")
		}
		return conn.CloseNow()
	}

	// One of each first, so whatever starts lazily is in the baseline.
	if err := connectSSE(0); err != nil {
		t.Fatal(err)
	}
	if err := connectWS(0); err != nil {
		t.Fatal(err)
	}
	streamtest.Eventually(t, "the hub to empty", func() bool { return ts.Hub.Len() == 0 })
	tr.CloseIdleConnections()
	ts.Client().CloseIdleConnections()
	baseline := runtime.NumGoroutine()

	const batches, perBatch = 100, 10 // 500 SSE and 500 WebSocket
	for b := range batches {
		var wg sync.WaitGroup
		errs := make(chan error, perBatch)
		for j := range perBatch {
			i := b*perBatch + j
			wg.Go(func() {
				if i%2 == 0 {
					errs <- connectSSE(i)
				} else {
					errs <- connectWS(i)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	streamtest.Eventually(t, "the hub to empty", func() bool { return ts.Hub.Len() == 0 })
	const slack = 5
	deadline := time.Now().Add(waitTimeout)
	for {
		tr.CloseIdleConnections()
		ts.Client().CloseIdleConnections()
		n := runtime.NumGoroutine()
		if n <= baseline+slack {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, baseline %d:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A connection leaves the hub before its end is recorded.
	streamtest.Eventually(t, "1002 disconnect records", func() bool { return len(ts.Logs.Records("disconnect")) == 1002 })
}

// TestResyncAsksClientsToResume: when a Redis bus finds a gap in its live
// feed it cannot fill, it asks every local connection to resume (the
// broker.Resyncer hook): SSE gets "reconnect", WebSocket closes 1013, and
// both come back with their cursor.
func TestResyncAsksClientsToResume(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "alice"))
	sse.Ready(t)
	ws := ts.dialWS(t, query("user_id", "alice"))
	ws.Ready(t)
	streamtest.Eventually(t, "two connections", func() bool { return ts.Hub.Len() == 2 })

	ts.Hub.Each(func(c broker.Conn) {
		r, ok := c.(broker.Resyncer)
		is.True(ok) // every transport connection can be asked
		r.Resync()
	})

	is.Equal(sse.NextEvent(t, "reconnect")["reason"], "resync")
	sse.Ended(t)
	is.Equal(ws.Closed(t), websocket.StatusTryAgainLater)
	streamtest.Eventually(t, "the hub to empty", func() bool { return ts.Hub.Len() == 0 })
}
