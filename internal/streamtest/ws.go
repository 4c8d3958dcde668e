package streamtest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// WS is a real WebSocket client; once StartReading is called, a goroutine
// reads its frames. It is a Stream: its frames are the JSON objects the
// server sent, each naming its event.
type WS struct {
	frames
	Conn *websocket.Conn
	// LocalAddr is the client's end of the connection, as the server sees
	// it.
	LocalAddr string
	// Frames carries the JSON frames read; it is closed when reading stops.
	Frames chan Frame
	// Err holds why reading stopped (a close status, for instance); read it
	// only once Frames is closed.
	Err error

	done     chan struct{}
	readOnce sync.Once
}

// DialWS opens the WebSocket at url (ws://host/path?query) and starts
// reading. The connection is closed when the test ends.
func DialWS(t testing.TB, url string) *WS {
	t.Helper()
	c := DialWSNoRead(t, url)
	c.StartReading()
	return c
}

// DialWSNoRead is DialWS without reading: until StartReading, the client
// answers neither pings nor the server's close frame, and frames pile up: a
// dead or slow peer.
func DialWSNoRead(t testing.TB, url string) *WS {
	t.Helper()
	c := &WS{Frames: make(chan Frame, 10000), done: make(chan struct{})}
	c.frames = frames{read: c.nextFrame, ended: func() error { return c.Err }, name: "WebSocket"}
	var dialer net.Dialer
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				c.LocalAddr = conn.LocalAddr().String()
			}
			return conn, err
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	conn.SetReadLimit(1 << 20)
	c.Conn = conn
	t.Cleanup(c.Close)
	return c
}

// ReadOne reads one frame in the caller's goroutine, before StartReading.
func (c *WS) ReadOne(t testing.TB) Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	_, data, err := c.Conn.Read(ctx)
	if err != nil {
		t.Fatalf("read a WebSocket frame: %v", err)
	}
	var f Frame
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("frame is not JSON: %q", data)
	}
	return f
}

// StartReading starts the goroutine that reads frames into Frames; calling
// it again does nothing.
func (c *WS) StartReading() {
	c.readOnce.Do(func() {
		go func() {
			defer close(c.done)
			defer close(c.Frames)
			for {
				_, data, err := c.Conn.Read(context.Background())
				if err != nil {
					c.Err = err
					return
				}
				var f Frame
				if json.Unmarshal(data, &f) == nil {
					c.Frames <- f
				}
			}
		}()
	})
}

// Send writes one JSON frame.
func (c *WS) Send(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := c.Conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// nextFrame takes the next frame read, checking that it names its event.
func (c *WS) nextFrame(t testing.TB) (Frame, bool) {
	t.Helper()
	select {
	case f, ok := <-c.Frames:
		if ok && f.Event() == "" {
			t.Fatalf("WebSocket frame without an event: %v", map[string]any(f))
		}
		return f, ok
	case <-time.After(WaitTimeout):
		t.Fatal("timed out waiting for a WebSocket frame")
	}
	return nil, false
}

// Closed waits for the connection to end and returns the close status (-1
// when it ended without one). Frames not yet taken stay in Frames.
func (c *WS) Closed(t testing.TB) websocket.StatusCode {
	t.Helper()
	select {
	case <-c.done:
		return websocket.CloseStatus(c.Err)
	case <-time.After(WaitTimeout):
		t.Fatal("WebSocket was not closed")
	}
	return -1
}

// Close closes the connection at once and waits for the reader.
func (c *WS) Close() {
	c.Conn.CloseNow()
	c.StartReading() // a reader that never started still has to finish
	<-c.done
}
