package transport_test

import (
	"net/http"
	"testing"

	"github.com/matryer/is"
)

// The SSE framing, field by field: what an EventSource sees.

func TestSSEFraming(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "alice", "channels", "news"))
	is.Equal(sse.Resp.StatusCode, http.StatusOK)
	is.Equal(sse.Resp.Header.Get("Content-Type"), "text/event-stream")

	ev := sse.NextRaw(t)        // the framing itself: read raw
	is.Equal(ev.Event, "ready") // control events are named
	is.Equal(ev.Retry, "2000")
	ready := ev.JSON(t)
	is.Equal(ready["event"], "ready")
	is.Equal(ready["user_id"], "alice")
	is.Equal(ready["channels"], []any{"news"})
	connID, _ := ready["connection_id"].(string)
	is.True(connID != "")
	is.True(ev.ID != "") // ready carries the head as id, so a reconnect before any notification resumes
	is.Equal(ready["cursor"], ev.ID)
	readySeq := cursorSeq(t, ev.ID)

	id := ts.send(t, map[string]any{"type": "order", "title": "Shipped", "message": "m", "user_id": "alice", "data": map[string]any{"order": 42}})
	ev = sse.NextRaw(t)
	is.Equal(ev.Event, "") // default type: EventSource.onmessage sees it
	n := ev.JSON(t)
	is.Equal(n["event"], "notification")
	is.Equal(n["id"], id)
	is.Equal(n["type"], "order")
	is.Equal(n["title"], "Shipped")
	is.Equal(n["user_id"], "alice")
	is.Equal(n["data"], map[string]any{"order": float64(42)})
	is.Equal(ev.ID, n["cursor"])
	is.True(cursorSeq(t, ev.ID) > readySeq)

	bid := ts.send(t, map[string]any{"title": "Breaking", "channels": []string{"news"}})
	ev = sse.NextRaw(t)
	is.Equal(ev.Event, "")
	n = ev.JSON(t)
	is.Equal(n["id"], bid)
	is.Equal(n["channels"], []any{"news"})
	_, hasUser := n["user_id"]
	is.True(!hasUser) // broadcasts carry no user
	is.Equal(ev.ID, n["cursor"])

	// A control event is named and carries no id: it must not move the
	// browser's Last-Event-ID.
	status, _, _ := ts.do(t, http.MethodPost, "/api/v1/connections/"+connID+"/subscribe", map[string]any{"channels": []string{"tech"}})
	is.Equal(status, http.StatusOK)
	ev = sse.NextRaw(t)
	is.Equal(ev.Event, "subscribed")
	is.Equal(ev.ID, "")
	sub := ev.JSON(t)
	is.Equal(sub["event"], "subscribed")
	is.Equal(sub["channels"], []any{"tech"})
	is.Equal(sub["subscriptions"], []any{"news", "tech"})
	tid := ts.send(t, map[string]any{"title": "On tech", "channels": []string{"tech"}})
	sse.NextNotification(t, tid)
}
