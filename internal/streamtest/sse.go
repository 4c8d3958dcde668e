package streamtest

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Event is one parsed Server-Sent Event.
type Event struct {
	Event string // "" for the default (message) type
	ID    string
	Data  string
	Retry string // the retry: field, when the event carried one
}

// JSON decodes the event's data.
func (e Event) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.Data), &m); err != nil {
		t.Fatalf("event data is not JSON: %q", e.Data)
	}
	return m
}

// SSE is a real HTTP client reading a text/event-stream, as an EventSource
// would. It is a Stream whose frames are the events' data, each checked on
// the way in: the data's "event" is the SSE event's name ("notification"
// for the unnamed type), and its id: is the data's "cursor".
type SSE struct {
	frames
	Resp *http.Response
	// Events carries the stream's events; it is closed when the stream ends.
	Events chan Event
	// Comments carries comment lines (heartbeats), ":" included; with
	// nobody taking them, those past the first 100 are dropped.
	Comments chan string
	// Err holds why reading stopped, nil for a clean end of stream; read it
	// only once Events is closed.
	Err error

	cancel   context.CancelFunc
	done     chan struct{}
	readOnce sync.Once
}

// DialSSE opens url (a GET for text/event-stream) with client, setting the
// header, value pairs given, and starts reading. The stream is closed when
// the test ends.
func DialSSE(t testing.TB, client *http.Client, url string, headers ...string) *SSE {
	t.Helper()
	c := DialSSENoRead(t, client, url, headers...)
	c.StartReading()
	return c
}

// DialSSENoRead is DialSSE without reading the body until StartReading: a
// client that stopped reading.
func DialSSENoRead(t testing.TB, client *http.Client, url string, headers ...string) *SSE {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &SSE{Resp: resp, Events: make(chan Event, 10000), Comments: make(chan string, 100), cancel: cancel, done: make(chan struct{})}
	c.frames = frames{read: c.nextFrame, ended: func() error { return c.Err }, name: "SSE"}
	t.Cleanup(c.Close)
	return c
}

// StartReading starts the goroutine that reads the stream; calling it again
// does nothing.
func (c *SSE) StartReading() { c.readOnce.Do(func() { go c.read() }) }

func (c *SSE) read() {
	defer close(c.done)
	defer close(c.Events)
	sc := bufio.NewScanner(c.Resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var ev Event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				ev.Data = strings.Join(data, "\n")
				c.Events <- ev
			}
			ev, data = Event{}, nil
		case strings.HasPrefix(line, ":"):
			select {
			case c.Comments <- line:
			default:
			}
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.Event = value
			case "id":
				ev.ID = value
			case "retry":
				ev.Retry = value
			case "data":
				data = append(data, value)
			}
		}
	}
	c.Err = sc.Err()
}

// NextRawOrEnd returns the next event as it came over the wire, unchecked;
// ok is false when the stream has ended. It is for tests of the framing
// itself (the retry: field, the event: line); the rest read frames.
func (c *SSE) NextRawOrEnd(t testing.TB) (ev Event, ok bool) {
	t.Helper()
	select {
	case ev, ok = <-c.Events:
		return ev, ok
	case <-time.After(WaitTimeout):
		t.Fatal("timed out waiting for an SSE event")
	}
	return Event{}, false
}

// NextRaw is NextRawOrEnd failing the test if the stream ends.
func (c *SSE) NextRaw(t testing.TB) Event {
	t.Helper()
	ev, ok := c.NextRawOrEnd(t)
	if !ok {
		t.Fatalf("SSE stream ended (%v) while waiting for an event", c.Err)
	}
	return ev
}

// nextFrame reads the next event as a Frame, checking what makes it one:
// its data is a JSON object whose "event" is the SSE event's name, or
// "notification" for the default (unnamed) type, which EventSource's
// onmessage sees; and its id: is its cursor, so Last-Event-ID resumes from
// where the client is. A notification always has one; a control event
// without a cursor has no id:, so it cannot move the browser's
// Last-Event-ID.
func (c *SSE) nextFrame(t testing.TB) (Frame, bool) {
	t.Helper()
	ev, ok := c.NextRawOrEnd(t)
	if !ok {
		return nil, false
	}
	f := Frame(ev.JSON(t))
	want := ev.Event
	if want == "" {
		want = "notification"
		if ev.ID == "" {
			t.Fatalf("SSE notification without an id: %s", ev.Data)
		}
	}
	if f.Event() != want {
		t.Fatalf("SSE event %q carries event %v in its data", ev.Event, f["event"])
	}
	if ev.ID != f.Cursor() {
		t.Fatalf("SSE %s event: id %q is not its cursor %v", want, ev.ID, f["cursor"])
	}
	return f, true
}

// NextComment returns the next comment line (a heartbeat), ":" included.
func (c *SSE) NextComment(t testing.TB) string {
	t.Helper()
	select {
	case line := <-c.Comments:
		return line
	case <-time.After(WaitTimeout):
		t.Fatal("timed out waiting for an SSE comment")
	}
	return ""
}

// Ended waits for the server to end the stream.
func (c *SSE) Ended(t testing.TB) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(WaitTimeout):
		t.Fatal("SSE stream did not end")
	}
}

// Close ends the stream from the client's side and waits for the reader.
func (c *SSE) Close() {
	c.cancel()
	c.StartReading() // a reader that never started still has to finish
	<-c.done
	c.Resp.Body.Close()
}
