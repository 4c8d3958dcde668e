package transport_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// Peers that stop reading, and what they must not cost the others.

// slowPeers is the config of a test about peers that stop reading: a queue
// of queue frames, bodies big enough to fill it fast, and a write timeout
// far beyond the test's deadlines, so a slow peer is let go when its queue
// overflows, not when a write blocked on it times out (nor does it hold a
// shared writer that long).
func slowPeers(queue int) func(*testConfig) {
	return func(o *testConfig) {
		o.QueueSize = queue
		o.MaxBodyBytes = 1 << 20
		o.WriteTimeout = time.Minute
	}
}

// TestSlowConsumer: a client that stops reading is closed as a slow
// consumer at once, without holding up anyone else, and resumes without
// loss.
func TestSlowConsumer(t *testing.T) {
	for _, kind := range []string{"ws", "sse"} {
		t.Run(kind, func(t *testing.T) {
			is := is.New(t)
			ts := newTestServer(t, slowPeers(8))
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
			var fastSSEGot, fastWSGot []streamtest.Frame
			sendBig := func(i int) {
				body := map[string]any{"title": fmt.Sprint(i), "data": map[string]any{"blob": blob}}
				if i%2 == 0 {
					body["user_id"] = "alice"
				} else {
					body["channels"] = []string{"news"}
				}
				ids = append(ids, ts.send(t, body))
				// The fast clients keep up (each reads what was sent
				// before the next send): on a busy machine a reader not
				// scheduled in time would overflow its queue of 8 too.
				fastSSEGot = append(fastSSEGot, fastSSE.NextNotification(t, ids[len(ids)-1]))
				fastWSGot = append(fastWSGot, fastWS.NextNotification(t, ids[len(ids)-1]))
			}
			start := time.Now()
			for i := 0; ts.Hub.Len() == 3; i++ {
				if i == 4000 || time.Since(start) > 12*waitTimeout { // a hang guard, not a speed check
					t.Fatalf("the slow consumer was never closed (%d sent)", i)
				}
				sendBig(i)
			}
			t.Logf("slow consumer closed after %d notifications of %d KiB in %v", len(ids), len(blob)>>10, time.Since(start))
			for i := range 5 { // and a few after it is gone
				sendBig(len(ids) + i)
			}

			// The fast clients got everything (NextNotification checked each
			// id as it was sent), with cursors in order.
			checkIncreasing(t, fastSSEGot, 0)
			checkIncreasing(t, fastWSGot, 0)
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

// TestSlowConsumersDoNotHoldOthers: more peers that stopped reading than
// there are shared writers; each is closed when its queue overflows, and
// the peers that read get everything, in order, meanwhile.
func TestSlowConsumersDoNotHoldOthers(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, slowPeers(8))
	q := query("user_id", "alice", "channels", "news")
	const slow = 6
	for i := range slow {
		if i%2 == 0 {
			ts.dialSSENoRead(t, q)
		} else {
			ts.dialWSNoRead(t, q)
		}
	}
	fastSSE := ts.dialSSE(t, q)
	fastSSE.Ready(t)
	fastWS := ts.dialWS(t, q)
	fastWS.Ready(t)
	streamtest.Eventually(t, "every connection", func() bool { return ts.Hub.Len() == slow+2 })

	blob := strings.Repeat("x", 32<<10)
	var ids []string
	start := time.Now()
	for i := 0; ts.Hub.Len() > 2; i++ {
		if i == 4000 || time.Since(start) > 12*waitTimeout { // a hang guard, not a speed check
			t.Fatalf("slow consumers still connected after %d notifications: %d", i, ts.Hub.Len()-2)
		}
		id := ts.send(t, map[string]any{"title": fmt.Sprint(i), "channels": []string{"news"}, "data": map[string]any{"blob": blob}})
		ids = append(ids, id)
		// The readers keep up, each notification in order, while the
		// peers that read nothing overflow.
		fastSSE.NextNotification(t, id)
		fastWS.NextNotification(t, id)
	}
	streamtest.Eventually(t, "the disconnect records", func() bool { return len(ts.disconnects()) == slow })
	for _, reason := range ts.disconnects() {
		is.Equal(reason, "slow_consumer")
	}
}
