package streamtest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// failure is a testing.TB that records the first fatal failure and ends
// the goroutine calling it, as the real one does.
type failure struct {
	testing.TB
	msg string
}

func (f *failure) Helper() {}

func (f *failure) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *failure) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// wantFailure runs read and fails the test unless read fails with a
// message holding want.
func wantFailure(t *testing.T, want string, read func(t testing.TB)) {
	t.Helper()
	f := &failure{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		read(f)
	}()
	<-done
	if f.msg == "" {
		t.Fatalf("the read passed; want a failure saying %q", want)
	}
	if !strings.Contains(f.msg, want) {
		t.Fatalf("the read failed with %q; want %q", f.msg, want)
	}
}

// serveWS accepts one WebSocket and writes frames to it, then waits for the
// client to go.
func serveWS(t *testing.T, frames ...string) *streamtest.WS {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for _, f := range frames {
			if c.Write(r.Context(), websocket.MessageText, []byte(f)) != nil {
				return
			}
		}
		_, _, _ = c.Read(context.Background())
	}))
	t.Cleanup(srv.Close)
	return streamtest.DialWS(t, "ws"+strings.TrimPrefix(srv.URL, "http"))
}

// The vocabulary reads the same on either transport; NextEvent and
// NextNotification fail on a stray frame, SkipTo passes over it.
func TestStreamVocabulary(t *testing.T) {
	frames := []string{
		`{"event":"ready","cursor":"e-1"}`,
		`{"event":"subscribed","channels":["a"]}`,
		`{"event":"notification","id":"n1","cursor":"e-2"}`,
		`{"event":"notification","id":"n2","cursor":"e-3"}`,
		`{"event":"pong"}`,
	}
	sseBody := "event: ready\nid: e-1\ndata: " + frames[0] + "\n\n" +
		"event: subscribed\ndata: " + frames[1] + "\n\n" +
		"id: e-2\ndata: " + frames[2] + "\n\n" +
		"id: e-3\ndata: " + frames[3] + "\n\n" +
		"event: pong\ndata: " + frames[4] + "\n\n"
	dial := map[string]func(t *testing.T) streamtest.Stream{
		"sse": func(t *testing.T) streamtest.Stream { return serveSSE(t, sseBody) },
		"ws":  func(t *testing.T) streamtest.Stream { return serveWS(t, frames...) },
	}
	for kind, dial := range dial {
		t.Run(kind, func(t *testing.T) {
			is := is.New(t)
			s := dial(t)
			is.Equal(s.Ready(t).Cursor(), "e-1")
			is.Equal(s.NextEvent(t, "subscribed")["channels"], []any{"a"})
			got := s.NextNotifications(t, 2)
			is.Equal(streamtest.IDs(got), []string{"n1", "n2"})
			is.Equal(got[1].Cursor(), "e-3")
			is.Equal(s.Next(t), streamtest.Frame{"event": "pong"})

			s = dial(t)
			is.Equal(s.SkipTo(t, "notification").ID(), "n1")

			for _, tc := range []struct {
				name  string
				read  func(t testing.TB, s streamtest.Stream)
				fails string
			}{
				{"a stray frame before the event", func(t testing.TB, s streamtest.Stream) { s.NextEvent(t, "subscribed") }, `want "subscribed"`},
				{"an event where a notification is due", func(t testing.TB, s streamtest.Stream) { s.NextNotification(t, "n1") }, "want notification n1"},
				{"another notification than the one named", func(t testing.TB, s streamtest.Stream) {
					s.Ready(t)
					s.NextEvent(t, "subscribed")
					s.NextNotification(t, "n2")
				}, "want notification n2"},
				{"an event among notifications", func(t testing.TB, s streamtest.Stream) { s.SkipTo(t, "notification"); s.NextNotifications(t, 2) }, `want "notification"`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					s := dial(t)
					wantFailure(t, tc.fails, func(t testing.TB) { tc.read(t, s) })
				})
			}
		})
	}
}

// A WebSocket frame must name its event.
func TestWSFrameWithoutEvent(t *testing.T) {
	ws := serveWS(t, `{"id":"n1"}`)
	wantFailure(t, "without an event", func(t testing.TB) { ws.Next(t) })
}

func TestEventually(t *testing.T) {
	t.Parallel()
	var polls atomic.Int32
	streamtest.Eventually(t, "the third poll", func() bool { return polls.Add(1) == 3 })
	if polls.Load() != 3 {
		t.Fatalf("%d polls", polls.Load())
	}
	if testing.Short() {
		t.Skip("the failing case waits WaitTimeout")
	}
	wantFailure(t, "waiting for a condition that never holds", func(t testing.TB) {
		streamtest.Eventually(t, "a condition that never holds", func() bool { return false })
	})
}
