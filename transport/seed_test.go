package transport_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// The seed's own examples: its curl commands and what its PHP client
// sends.

// The seed's curl examples, byte for byte (the -d '…' payloads).
const (
	seedSendBody = `{
    "type": "tarea",
    "title": "Nueva Tarea Asignada",
    "message": "Se te ha asignado una tarea importante",
    "user_id": "user123",
    "channels": ["tareas"],
    "data": {
      "task_id": "task456",
      "priority": "high"
    }
  }`
	seedScheduleBody = `{
    "user_id": "user123",
    "title": "Recordatorio de Tarea",
    "message": "Tu tarea vence hoy a las 5 PM",
    "type": "recordatorio",
    "scheduled_at": "2024-01-29T17:00:00Z",
    "data": {
      "task_id": "task456"
    }
  }`
	// What Guzzle's 'json' option sends for the seed's PHP client:
	// json_encode escapes non-ASCII and slashes, and an empty PHP array
	// becomes [].
	phpSendBody = `{"type":"info","title":"Nueva tarea \u00e1","message":"Revisa http:\/\/app.test\/tareas","user_id":"user123","data":[]}`
)

func TestSeedAPISendCurl(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	before := time.Now().Add(-time.Second)

	status, resp, hdr := ts.do(t, http.MethodPost, "/api/v1/notifications/send", seedSendBody)
	is.Equal(status, http.StatusCreated)
	is.Equal(hdr.Get("Content-Type"), "application/json")
	is.Equal(len(resp), 2) // exactly {"id","timestamp"}
	id, _ := resp["id"].(string)
	is.True(id != "")
	sent := apiTime(t, resp["timestamp"])
	is.True(sent.After(before) && sent.Before(time.Now().Add(time.Second)))

	// curl http://localhost:8080/api/v1/notifications/user/user123
	body := apiInbox(t, ts, "user123", "")
	is.Equal(body["user_id"], "user123")
	is.Equal(body["total"], float64(1))
	is.Equal(body["unread"], float64(1))
	entries := apiEntries(t, body)
	is.Equal(len(entries), 1)
	e := entries[0]
	is.Equal(e["id"], id)
	is.Equal(e["type"], "tarea")
	is.Equal(e["title"], "Nueva Tarea Asignada")
	is.Equal(e["message"], "Se te ha asignado una tarea importante")
	is.Equal(e["timestamp"], resp["timestamp"])
	is.Equal(e["read"], false)
	is.Equal(e["user_id"], "user123")
	is.Equal(apiStrings(e["channels"]), []string{"tareas"})
	is.Equal(e["data"], map[string]any{"task_id": "task456", "priority": "high"})

	// curl -X PUT http://localhost:8080/api/v1/notifications/user123/<id>/read
	// (no body, no Content-Type)
	status, read, _ := ts.do(t, http.MethodPut, "/api/v1/notifications/user123/"+id+"/read", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(read["id"], id)
	is.Equal(read["read"], true)
	apiTime(t, read["read_at"])

	body = apiInbox(t, ts, "user123", "")
	is.Equal(apiEntries(t, body)[0]["read"], true)
	is.Equal(body["unread"], float64(0))
}

func TestSeedAPIScheduleCurl(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)

	resp := apiSchedule(t, ts, seedScheduleBody)
	id, _ := resp["id"].(string)
	is.True(id != "")
	is.Equal(resp["user_id"], "user123")
	is.Equal(resp["scheduled_at"], "2024-01-29T17:00:00Z")
	created := apiTime(t, resp["created_at"])
	is.True(time.Since(created) < 5*time.Second)

	// 2024-01-29 is in the past: it is delivered at once.
	streamtest.Eventually(t, "the seed's scheduled notification in the inbox", func() bool {
		return apiInbox(t, ts, "user123", "")["total"] == float64(1)
	})
	e := apiEntries(t, apiInbox(t, ts, "user123", ""))[0]
	is.Equal(e["id"], id)
	is.Equal(e["type"], "recordatorio")
	is.Equal(e["title"], "Recordatorio de Tarea")
	is.Equal(e["message"], "Tu tarea vence hoy a las 5 PM")
	is.Equal(e["data"], map[string]any{"task_id": "task456"})
	is.Equal(e["read"], false)
}

func TestSeedAPIPHPClientSend(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "user123"))
	sse.Ready(t)

	status, resp, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/send", phpSendBody)
	is.Equal(status, http.StatusCreated)
	id := resp["id"].(string)
	apiTime(t, resp["timestamp"])

	n := sse.NextNotification(t, id)
	is.Equal(n["title"], "Nueva tarea á")
	is.Equal(n["message"], "Revisa http://app.test/tareas")
	e := apiEntries(t, apiInbox(t, ts, "user123", ""))[0]
	is.Equal(e["id"], id)
	is.Equal(e["type"], "info")
	_, hasData := e["data"] // data: [] is "no data"
	is.True(!hasData)
}

func TestSeedAPIPHPClientSchedule(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	// DateTime::ATOM carries the local offset.
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	local := at.In(time.FixedZone("CET", 3600)).Format("2006-01-02T15:04:05-07:00")
	body := `{"user_id":"user123","title":"Recordatorio","message":"Tu tarea vence hoy","type":"recordatorio","scheduled_at":"` + local + `","data":[]}`

	resp := apiSchedule(t, ts, body)
	is.Equal(resp["user_id"], "user123")
	is.Equal(resp["scheduled_at"], at.UTC().Format(time.RFC3339)) // normalised to UTC
	is.Equal(resp["status"], "pending")

	status, got, _ := ts.do(t, http.MethodGet, "/api/v1/schedules/"+resp["id"].(string), nil)
	is.Equal(status, http.StatusOK)
	is.Equal(got["scheduled_at"], resp["scheduled_at"])
	is.Equal(got["type"], "recordatorio")
}

func TestSeedAPIHealth(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	status, body, hdr := ts.do(t, http.MethodGet, "/health", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(hdr.Get("Content-Type"), "application/json")
	is.Equal(body["status"], "ok")
}
