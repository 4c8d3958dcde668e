package transport_test

import (
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// Heartbeats: SSE comments that keep proxies from timing a stream out, and
// WebSocket pings that find a peer that stopped answering.

func TestSSEHeartbeat(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(o *testConfig) {
		o.HeartbeatInterval = 50 * time.Millisecond
	})
	sse := ts.dialSSE(t, query("user_id", "alice"))
	sse.Ready(t)
	for range 3 {
		is.Equal(sse.NextComment(t), ": heartbeat")
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
		sse.NextComment(t)
	}
	is.Equal(ts.Hub.Len(), 2)
	ws.Send(t, map[string]any{"action": "ping"})
	is.Equal(ws.Next(t), streamtest.Frame{"event": "pong"})
	id := ts.send(t, map[string]any{"title": "x", "user_id": "alice"})
	ws.NextNotification(t, id)
	is.Equal(ts.disconnects(), []string{"ping_timeout"})
}
