package streamtest

import "testing"

// Frame is one message of a stream as a test reads it, whichever transport
// carried it: the JSON object the server sent. Its "event" names it
// ("notification" for a notification, else the control event's name) and
// its "cursor", when it has one, is where a client resumes from. A
// WebSocket frame is exactly that object; an SSE event's data is, once
// checked against the event's name and id (see SSE).
type Frame map[string]any

// Event is the frame's "event".
func (f Frame) Event() string { return f.str("event") }

// Cursor is the frame's "cursor", "" when it has none.
func (f Frame) Cursor() string { return f.str("cursor") }

// ID is the notification's id, "" for a control event.
func (f Frame) ID() string { return f.str("id") }

func (f Frame) str(key string) string {
	s, _ := f[key].(string)
	return s
}

// IDs returns the frames' ids, in order.
func IDs(frames []Frame) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = f.ID()
	}
	return out
}

// Stream is a client's view of one stream. The SSE and WebSocket clients
// both satisfy it, so a test about what a stream carries (routing, resume,
// slow consumers) runs over each transport with one body.
//
// Every read fails the test after WaitTimeout.
type Stream interface {
	// Next returns the next frame, failing the test if the stream ends.
	Next(t testing.TB) Frame
	// NextOrEnd returns the next frame; ok is false once the stream has
	// ended.
	NextOrEnd(t testing.TB) (f Frame, ok bool)
	// NextEvent returns the next frame and fails unless it is the event
	// given: a stray frame before it fails the test.
	NextEvent(t testing.TB, event string) Frame
	// NextNotification returns the next frame and fails unless it is the
	// notification with the id given.
	NextNotification(t testing.TB, id string) Frame
	// NextNotifications reads n frames that must all be notifications.
	NextNotifications(t testing.TB, n int) []Frame
	// SkipTo skips frames until the event given arrives, for a test that
	// does not care what comes before it.
	SkipTo(t testing.TB, event string) Frame
	// Ready reads the ready event every stream starts with.
	Ready(t testing.TB) Frame
	// Close ends the stream from the client's side.
	Close()
}

var (
	_ Stream = (*SSE)(nil)
	_ Stream = (*WS)(nil)
)

// frames is what Stream adds on top of reading one frame; SSE and WS embed
// it, each giving it its own way to read.
type frames struct {
	// read returns the next frame, or ok false once the stream has ended.
	read func(t testing.TB) (Frame, bool)
	// ended says why the stream ended, once it has.
	ended func() error
	// name is the transport's, for failure messages.
	name string
}

func (r frames) NextOrEnd(t testing.TB) (Frame, bool) {
	t.Helper()
	return r.read(t)
}

func (r frames) Next(t testing.TB) Frame {
	t.Helper()
	f, ok := r.read(t)
	if !ok {
		t.Fatalf("%s stream ended (%v) while waiting for a frame", r.name, r.ended())
	}
	return f
}

func (r frames) NextEvent(t testing.TB, event string) Frame {
	t.Helper()
	f := r.Next(t)
	if f.Event() != event {
		t.Fatalf("%s: got %q event %v, want %q", r.name, f.Event(), map[string]any(f), event)
	}
	return f
}

func (r frames) NextNotification(t testing.TB, id string) Frame {
	t.Helper()
	f := r.Next(t)
	if f.Event() != "notification" || f.ID() != id {
		t.Fatalf("%s: got %v, want notification %s", r.name, map[string]any(f), id)
	}
	return f
}

func (r frames) NextNotifications(t testing.TB, n int) []Frame {
	t.Helper()
	out := make([]Frame, n)
	for i := range out {
		out[i] = r.NextEvent(t, "notification")
	}
	return out
}

func (r frames) SkipTo(t testing.TB, event string) Frame {
	t.Helper()
	for {
		if f := r.Next(t); f.Event() == event {
			return f
		}
	}
}

func (r frames) Ready(t testing.TB) Frame {
	t.Helper()
	return r.NextEvent(t, "ready")
}
