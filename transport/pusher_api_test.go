package transport_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/pusher"
)

// The Pusher HTTP API as Laravel's pusher and reverb broadcasters call it:
// bodies as Laravel's PHP client encodes them (one channel as "channel",
// several as "channels", data a JSON string, "[]" for none), signed as
// Pusher defines.

var testPusherApp = pusher.App{ID: "1001", Key: "app-key-1234", Secret: "app-secret-0123456789abcdef"}

func withPusher(c *testConfig) {
	app := testPusherApp
	c.PusherApp = &app
}

// pusherPost signs and sends body to path as Laravel's broadcaster does,
// at time at (zero: now), and returns the status and the raw answer.
func pusherPost(t *testing.T, ts *testServer, app pusher.App, path, body string, at time.Time) (int, string) {
	t.Helper()
	if at.IsZero() {
		at = time.Now()
	}
	query, err := pusher.Sign(app, pusher.APIRequest{Method: http.MethodPost, Path: path, Body: []byte(body)}, at)
	if err != nil {
		t.Fatal(err)
	}
	return pusherRaw(t, ts, path+"?"+query, body)
}

// pusherRaw sends body to pathAndQuery as is.
func pusherRaw(t *testing.T, ts *testServer, pathAndQuery, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+pathAndQuery, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(raw))
}

// laravelEvent is a body as Laravel's Pusher PHP client sends it.
func laravelEvent(name string, channels []string, data any, socket string) string {
	payload, _ := json.Marshal(data)
	body := map[string]any{"name": name, "data": string(payload)}
	if len(channels) == 1 {
		body["channel"] = channels[0]
	} else {
		body["channels"] = channels
	}
	if socket != "" {
		body["socket_id"] = socket
	}
	enc, _ := json.Marshal(body)
	return string(enc)
}

const eventsPath = "/apps/1001/events"

func TestPusherAPIEventReachesStreams(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher)
	sse := ts.dialSSE(t, query("user_id", "ana", "channels", "tareas"))
	sse.Ready(t)
	ws := ts.dialWS(t, query("user_id", "ben", "channels", "tareas"))
	ws.NextEvent(t, "ready")

	// The seed's TareaCreada: broadcastAs tarea.creada on Channel('tareas').
	status, answer := pusherPost(t, ts, testPusherApp, eventsPath,
		laravelEvent("tarea.creada", []string{"tareas"}, map[string]any{"tarea": map[string]any{"id": 7, "titulo": "Revisar"}, "title": "Nueva tarea"}, ""), time.Time{})
	is.Equal(status, http.StatusOK)
	is.Equal(answer, "{}") // exactly what Laravel's client accepts

	got := sse.Next(t)
	is.Equal(got["type"], "tarea.creada")
	is.Equal(got["title"], "Nueva tarea")
	is.Equal(got["channels"], []any{"tareas"})
	is.Equal(got["data"].(map[string]any)["tarea"], map[string]any{"id": float64(7), "titulo": "Revisar"})
	is.Equal(ws.NextEvent(t, "notification")["id"], got["id"])

	// Several channels, and Laravel's empty payload.
	status, _ = pusherPost(t, ts, testPusherApp, eventsPath, laravelEvent("ping", []string{"tareas", "otros"}, []any{}, ""), time.Time{})
	is.Equal(status, http.StatusOK)
	got = sse.Next(t)
	is.Equal(got["type"], "ping")
	is.Equal(got["data"], nil)

	is.Equal(len(ts.Logs.Records("send")), 2)
	is.Equal(ts.Logs.Records("send")[0]["source"], "pusher_api")
}

func TestPusherAPIBatch(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher)
	sse := ts.dialSSE(t, query("user_id", "ana", "channels", "a,b"))
	sse.Ready(t)
	batch := `{"batch":[` + laravelEvent("one", []string{"a"}, map[string]any{"n": 1}, "") + `,` +
		laravelEvent("two", []string{"b"}, map[string]any{"n": 2}, "") + `]}`
	status, answer := pusherPost(t, ts, testPusherApp, "/apps/1001/batch_events", batch, time.Time{})
	is.Equal(status, http.StatusOK)
	is.Equal(answer, `{"batch":{}}`)
	is.Equal(sse.Next(t)["type"], "one")
	is.Equal(sse.Next(t)["type"], "two")
}

// TestPusherAPIBroadcastNotification: Laravel's broadcast notification
// becomes a notification addressed to the user: in the inbox, on the
// user's SSE and WS streams, with Laravel's id, stored and delivered once
// however often it arrives (a retried broadcast job posts it again).
func TestPusherAPIBroadcastNotification(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher)
	sse := ts.dialSSE(t, query("user_id", "42"))
	sse.Ready(t)
	ws := ts.dialWS(t, query("user_id", "42"))
	ws.NextEvent(t, "ready")
	other := ts.dialSSE(t, query("user_id", "43"))
	other.Ready(t)

	const id = "9f2c1e4a-7b3d-4c5e-8f6a-1b2c3d4e5f60"
	body := laravelEvent(laravelNotificationEvent, []string{"private-App.Models.User.42"},
		map[string]any{"title": "Tarea asignada", "message": "Revisar el informe", "tarea_id": 7, "id": id,
			"type": `App\Notifications\TareaAsignada`, "socket": nil}, "")
	for range 2 { // the same body, signed anew each time, as a retry is
		status, answer := pusherPost(t, ts, testPusherApp, eventsPath, body, time.Time{})
		is.Equal(status, http.StatusOK)
		is.Equal(answer, "{}") // the retry succeeds too, or Laravel retries again
	}

	got := sse.Next(t)
	is.Equal(got["id"], id)
	is.Equal(got["user_id"], "42")
	is.Equal(got["type"], `App\Notifications\TareaAsignada`)
	is.Equal(got["title"], "Tarea asignada")
	is.Equal(ws.NextEvent(t, "notification")["id"], id)
	inbox := apiInbox(t, ts, "42", "")
	is.Equal(apiIDs(t, inbox), []string{id}) // stored once

	// Delivered once: a marker sent after both posts is next on each stream.
	mine := ts.send(t, map[string]any{"title": "marker", "user_id": "42"})
	is.Equal(sse.Next(t)["id"], mine)
	is.Equal(ws.NextEvent(t, "notification")["id"], mine)
	marker := ts.send(t, map[string]any{"title": "marker", "user_id": "43"})
	is.Equal(other.Next(t)["id"], marker) // user 43 never saw it
}

// TestPusherAPIToOthers: socket_id (Laravel's toOthers) keeps the event from
// that one connection.
func TestPusherAPIToOthers(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, withPusher)
	sender := ts.dialSSE(t, query("user_id", "ana", "channels", "room"))
	socket := sender.Ready(t)["connection_id"].(string)
	is.True(pusher.ValidSocketID(socket)) // connection ids are socket ids
	other := ts.dialWS(t, query("user_id", "ben", "channels", "room"))
	other.NextEvent(t, "ready")

	status, _ := pusherPost(t, ts, testPusherApp, eventsPath, laravelEvent("typing", []string{"room"}, map[string]any{"who": "ana"}, socket), time.Time{})
	is.Equal(status, http.StatusOK)
	is.Equal(other.NextEvent(t, "notification")["type"], "typing")
	marker := ts.send(t, map[string]any{"title": "marker", "channels": []string{"room"}})
	is.Equal(sender.Next(t)["id"], marker) // the sender skipped "typing"
}

// TestPusherAPIRefusals: every hostile request is refused with the status
// Pusher and Reverb answer, publishes nothing, and is audited as denied
// with its code, field, method and path, never the query (the signature),
// the body or a secret.
func TestPusherAPIRefusals(t *testing.T) {
	ts := newTestServer(t, withPusher)
	good := laravelEvent("e", []string{"c"}, map[string]any{"a": 1}, "")
	channels := make([]string, 101)
	for i := range channels {
		channels[i] = "c" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	events := make([]string, 11)
	for i := range events {
		events[i] = good
	}
	wrongKey := testPusherApp
	wrongKey.Key = "another-key-5678"
	wrongSecret := testPusherApp
	wrongSecret.Secret = "not-the-secret-0123456789"
	signedQuery := func(body string) string {
		q, err := pusher.Sign(testPusherApp, pusher.APIRequest{Method: http.MethodPost, Path: eventsPath, Body: []byte(body)}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	const batchPath, otherApp = "/apps/1001/batch_events", "/apps/9999/events"
	// bodyMarker is in every refused body: no log line may hold it.
	const bodyMarker = "body-marker-7f3a"
	for _, tc := range []struct {
		name   string
		send   func() (int, string)
		status int
		code   string
		path   string
	}{
		{"bad signature", func() (int, string) { return pusherPost(t, ts, wrongSecret, eventsPath, good, time.Time{}) }, 401, "signature_invalid", eventsPath},
		{"wrong key", func() (int, string) { return pusherPost(t, ts, wrongKey, eventsPath, good, time.Time{}) }, 401, "signature_invalid", eventsPath},
		{"stale timestamp", func() (int, string) {
			return pusherPost(t, ts, testPusherApp, eventsPath, good, time.Now().Add(-11*time.Minute))
		}, 401, "signature_invalid", eventsPath},
		{"body altered after signing", func() (int, string) {
			return pusherRaw(t, ts, eventsPath+"?"+signedQuery(good), strings.Replace(good, `"e"`, `"f"`, 1))
		}, 401, "signature_invalid", eventsPath},
		{"no signature", func() (int, string) { return pusherRaw(t, ts, eventsPath, good) }, 401, "signature_invalid", eventsPath},
		{"unknown app", func() (int, string) {
			return pusherPost(t, ts, testPusherApp, otherApp, good, time.Time{})
		}, 404, "unknown_app", otherApp},
		{"data not a string", func() (int, string) {
			return pusherPost(t, ts, testPusherApp, eventsPath, `{"name":"e","channel":"c","data":{"a":"`+bodyMarker+`"}}`, time.Time{})
		}, 422, "validation_failed", eventsPath},
		{"data not a JSON object", func() (int, string) {
			return pusherPost(t, ts, testPusherApp, eventsPath, `{"name":"e","channel":"c","data":"plain text `+bodyMarker+`"}`, time.Time{})
		}, 422, "validation_failed", eventsPath},
		{"a notification id the mapping refuses", func() (int, string) {
			return pusherPost(t, ts, testPusherApp, eventsPath, laravelEvent(laravelNotificationEvent, []string{"private-App.Models.User.42"},
				map[string]any{"id": "not an id " + bodyMarker, "type": "T"}, ""), time.Time{})
		}, 422, "validation_failed", eventsPath},
		{"101 channels", func() (int, string) {
			return pusherPost(t, ts, testPusherApp, eventsPath, laravelEvent("e", channels, map[string]any{"m": bodyMarker}, ""), time.Time{})
		}, 400, "bad_request", eventsPath},
		{"a batch of 11", func() (int, string) {
			return pusherPost(t, ts, testPusherApp, batchPath, `{"batch":[`+strings.Join(events, ",")+`]}`, time.Time{})
		}, 400, "bad_request", batchPath},
		{"invalid JSON", func() (int, string) {
			return pusherPost(t, ts, testPusherApp, eventsPath, `{"name":"`+bodyMarker+`",`, time.Time{})
		}, 400, "bad_request", eventsPath},
		{"oversized body", func() (int, string) {
			huge := laravelEvent("e", []string{"c"}, map[string]any{"blob": strings.Repeat(bodyMarker, 20<<10)}, "")
			return pusherPost(t, ts, testPusherApp, eventsPath, huge, time.Time{})
		}, 413, "body_too_large", eventsPath},
		{"bad socket_id", func() (int, string) {
			return pusherPost(t, ts, testPusherApp, eventsPath, laravelEvent("e", []string{"c"}, map[string]any{}, "not-a-socket-"+bodyMarker), time.Time{})
		}, 400, "bad_request", eventsPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			deniedBefore := len(ts.Logs.Records("denied"))
			status, answer := tc.send()
			is.Equal(status, tc.status)
			var e struct {
				Error struct{ Code, Message, Field string } `json:"error"`
			}
			is.NoErr(json.Unmarshal([]byte(answer), &e)) // the API's error shape
			is.Equal(e.Error.Code, tc.code)

			denied := ts.Logs.Records("denied")
			is.Equal(len(denied), deniedBefore+1) // audited, once
			rec := denied[len(denied)-1]
			is.Equal(rec["code"], tc.code)
			is.Equal(rec["method"], http.MethodPost)
			is.Equal(rec["path"], tc.path) // no query string
			if e.Error.Field != "" {
				is.Equal(rec["field"], e.Error.Field)
			} else {
				is.Equal(rec["field"], nil)
			}
		})
	}
	is := is.New(t)
	is.Equal(len(ts.Logs.Records("send")), 0) // nothing was published
	logs := ts.Logs.text()
	is.True(!strings.Contains(logs, testPusherApp.Secret))
	is.True(!strings.Contains(logs, wrongSecret.Secret))
	is.True(!strings.Contains(logs, "auth_signature"))
	is.True(!strings.Contains(logs, "body_md5"))
	is.True(!strings.Contains(logs, bodyMarker))
}

// TestPusherAPIOff: without a configured app the endpoints answer 404 and
// say what to set.
func TestPusherAPIOff(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	status, answer := pusherPost(t, ts, testPusherApp, eventsPath, laravelEvent("e", []string{"c"}, map[string]any{}, ""), time.Time{})
	is.Equal(status, http.StatusNotFound)
	is.True(strings.Contains(answer, "PUSHER_APP_ID"))
	denied := ts.Logs.Records("denied") // refused, so audited
	is.Equal(len(denied), 1)
	is.Equal(denied[0]["code"], "pusher_not_configured")
	is.Equal(denied[0]["path"], eventsPath)
}
