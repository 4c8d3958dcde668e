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
	is.Equal(ws.NextEvent(t, "ready")["user_id"], "user123")

	id := ts.send(t, map[string]any{"type": "tarea", "title": "Nueva", "message": "m", "user_id": "user123", "data": []any{}})

	ev := sse.Next(t)
	is.Equal(ev.Event, "")
	n := ev.JSON(t)
	is.Equal(n["id"], id)
	is.Equal(n["event"], "notification")
	is.Equal(ev.ID, n["cursor"])
	m := ws.NextEvent(t, "notification")
	is.Equal(m["id"], id)

	status, body, _ := ts.do(t, http.MethodGet, "/api/v1/notifications/user/user123", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body["total"], float64(1))
}
