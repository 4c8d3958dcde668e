package transport_test

import (
	"net/http"
	"testing"

	"github.com/matryer/is"
)

func TestSeedSendReachesSSEAndWebSocket(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "user123"))
	ready := sse.Ready(t)
	is.Equal(ready["user_id"], "user123")
	ws := ts.dialWS(t, query("user_id", "user123"))
	is.Equal(ws.Ready(t)["user_id"], "user123")

	id := ts.send(t, map[string]any{"type": "tarea", "title": "Nueva", "message": "m", "user_id": "user123", "data": []any{}})

	sse.NextNotification(t, id) // an unnamed event whose id: is its cursor
	ws.NextNotification(t, id)

	status, body, _ := ts.do(t, http.MethodGet, "/api/v1/notifications/user/user123", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body["total"], float64(1))
}
