package transport_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestPrivateChannelsAreNotOpen: Pusher's private and presence channels
// are Laravel's to authorize. In open mode a stream may not simply name
// one (it would read what Echo's signed subscribe guards); a token whose
// channels claim allows it may; the backend may still send to it.
func TestPrivateChannelsAreNotOpen(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	for _, ch := range []string{"private-orders.1", "presence-room.1", "private-encrypted-billing.1"} {
		status, resp, hdr := ts.do(t, http.MethodGet, "/sse?"+query("user_id", "eve", "channels", ch), nil)
		apiWantError(t, status, resp, hdr, http.StatusForbidden, "forbidden_channel", "channels")
	}
	ws := ts.dialWS(t, query("user_id", "eve"))
	ws.Ready(t)
	ws.Send(t, map[string]any{"action": "subscribe", "channels": []string{"private-orders.1"}})
	is.Equal(ws.NextEvent(t, "error")["code"], "forbidden_channel")
	ts.send(t, map[string]any{"title": "to the channel", "channels": []string{"private-orders.1"}}) // the backend may

	secure := newTestServer(t, secured)
	sse := secure.dialSSE(t, query("token", secToken(t, "ana", []string{"private-orders.*"}, time.Hour), "channels", "private-orders.1"))
	is.Equal(sse.Ready(t)["channels"], []any{"private-orders.1"})
}
