package transport_test

import (
	"context"
	"testing"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/internal/streamtest"
)

// Streams the server ends while asking the client to come back: at shutdown
// and when the live feed needs a resync. SSE gets a last "reconnect" event,
// WebSocket a close code that says to retry.

// dialOneOfEach opens an SSE and a WebSocket stream for alice, both past
// their ready event and in the hub.
func (ts *testServer) dialOneOfEach(t *testing.T) (*sseClient, *wsClient) {
	t.Helper()
	sse := ts.dialSSE(t, query("user_id", "alice"))
	sse.Ready(t)
	ws := ts.dialWS(t, query("user_id", "alice"))
	ws.Ready(t)
	streamtest.Eventually(t, "two connections", func() bool { return ts.Hub.Len() == 2 })
	return sse, ws
}

// TestCloseStreams: at shutdown SSE clients get a last "reconnect" event and
// WebSocket clients close status 1012, so both reconnect elsewhere.
func TestCloseStreams(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse, ws := ts.dialOneOfEach(t)

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

// TestResyncAsksClientsToResume: when a Redis bus finds a gap in its live
// feed it cannot fill, it asks every local connection to resume (the
// broker.Resyncer hook): SSE gets "reconnect", WebSocket closes 1013, and
// both come back with their cursor.
func TestResyncAsksClientsToResume(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse, ws := ts.dialOneOfEach(t)

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
