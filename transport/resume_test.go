package transport_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/inbox"
	"notification-service/internal/streamtest"
)

// Resuming a stream from a cursor, on every transport: exactly what was
// missed, in order, then live; a reset when the cursor cannot be honoured
// whole.

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
