package transport_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/internal/streamtest"
)

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

// ---------------------------------------------------------------- helpers

// apiPath joins path segments, escaping each.
func apiPath(segments ...string) string {
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return "/" + strings.Join(segments, "/")
}

// apiInbox lists a user's inbox and fails unless it answers 200.
func apiInbox(t *testing.T, ts *testServer, user, rawQuery string) map[string]any {
	t.Helper()
	path := "/api/v1/notifications/user/" + url.PathEscape(user)
	if rawQuery != "" {
		path += "?" + rawQuery
	}
	status, body, _ := ts.do(t, http.MethodGet, path, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %v", path, status, body)
	}
	return body
}

// apiEntries returns the notifications of an inbox listing.
func apiEntries(t *testing.T, body map[string]any) []map[string]any {
	t.Helper()
	list, ok := body["notifications"].([]any)
	if !ok {
		t.Fatalf("notifications is not an array: %#v", body["notifications"])
	}
	out := make([]map[string]any, len(list))
	for i, e := range list {
		out[i] = e.(map[string]any)
	}
	return out
}

// apiIDs returns the ids of an inbox listing, in order.
func apiIDs(t *testing.T, body map[string]any) []string {
	t.Helper()
	var ids []string
	for _, e := range apiEntries(t, body) {
		ids = append(ids, e["id"].(string))
	}
	return ids
}

// apiWantError checks the one error shape: the status, JSON content type,
// {"error":{"code","message"[,"field"]}}; field "" means no field.
func apiWantError(t *testing.T, status int, body map[string]any, hdr http.Header, wantStatus int, code, field string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %v", status, wantStatus, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %v", body)
	}
	if e["code"] != code {
		t.Fatalf("code %v, want %s: %v", e["code"], code, e)
	}
	if m, _ := e["message"].(string); m == "" {
		t.Fatalf("no message: %v", e)
	}
	if field == "" {
		if _, has := e["field"]; has {
			t.Fatalf("unexpected field %v: %v", e["field"], e)
		}
	} else if e["field"] != field {
		t.Fatalf("field %v, want %s: %v", e["field"], field, e)
	}
}

// apiSchedule posts a schedule and returns the answer, failing unless 201.
func apiSchedule(t *testing.T, ts *testServer, body any, headers ...string) map[string]any {
	t.Helper()
	status, resp, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/schedule", body, headers...)
	if status != http.StatusCreated {
		t.Fatalf("schedule: status %d: %v", status, resp)
	}
	return resp
}

// apiTime parses an RFC 3339 timestamp from a JSON field and checks it is
// UTC.
func apiTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("timestamp is not a string: %#v", v)
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("timestamp %q is not RFC 3339: %v", s, err)
	}
	if !strings.HasSuffix(s, "Z") {
		t.Fatalf("timestamp %q is not UTC", s)
	}
	return at
}

// apiStrings converts a JSON array of strings.
func apiStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// apiAt formats a time as the API takes it, at millisecond precision.
func apiAt(at time.Time) string {
	return at.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
}

// ---------------------------------------------------------------- seed

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

// ---------------------------------------------------------------- send

func TestAPISendBatchUserIDs(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sseA := ts.dialSSE(t, query("user_id", "a"))
	sseA.Ready(t)
	sseB := ts.dialSSE(t, query("user_id", "b"))
	sseB.Ready(t)

	id := ts.send(t, map[string]any{"title": "batch", "user_ids": []any{"a", "b", "a"}})

	sseA.NextNotification(t, id)
	sseB.NextNotification(t, id)
	for _, u := range []string{"a", "b"} {
		body := apiInbox(t, ts, u, "")
		is.Equal(apiIDs(t, body), []string{id}) // once, though "a" was named twice
		is.Equal(apiEntries(t, body)[0]["user_id"], u)
	}
	// "a" got it once: the next thing on its stream is the marker.
	marker := ts.send(t, map[string]any{"title": "marker", "user_id": "a"})
	sseA.NextNotification(t, marker)

	rec := ts.Logs.Records("send")[0]
	is.Equal(rec["notification_id"], id)
	is.Equal(apiStrings(rec["user_ids"]), []string{"a", "b"})
}

func TestAPISendChannelBroadcast(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	news := ts.dialSSE(t, query("user_id", "u", "channels", "news,sports"))
	news.Ready(t)
	other := ts.dialSSE(t, query("user_id", "w"))
	other.Ready(t)

	id := ts.send(t, map[string]any{"title": "breaking", "channels": []any{"news", "news", "sports"}})

	n := news.NextNotification(t, id)
	is.Equal(apiStrings(n["channels"]), []string{"news", "sports"})
	_, hasUser := n["user_id"]
	is.True(!hasUser)
	// A broadcast is in nobody's inbox.
	is.Equal(apiInbox(t, ts, "u", "")["total"], float64(0))
	is.Equal(apiInbox(t, ts, "w", "")["total"], float64(0))

	// Once per connection though it matched two channels; nothing for a
	// connection on neither.
	m1 := ts.send(t, map[string]any{"title": "marker", "user_id": "u"})
	news.NextNotification(t, m1)
	m2 := ts.send(t, map[string]any{"title": "marker", "user_id": "w"})
	other.NextNotification(t, m2)
}

func TestAPISendUserIDAsInteger(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)

	id := ts.send(t, map[string]any{"title": "int", "user_id": 42})
	is.Equal(apiIDs(t, apiInbox(t, ts, "42", "")), []string{id})

	batch := ts.send(t, map[string]any{"title": "mixed", "user_ids": []any{7, "8"}})
	is.Equal(apiIDs(t, apiInbox(t, ts, "7", "")), []string{batch})
	is.Equal(apiIDs(t, apiInbox(t, ts, "8", "")), []string{batch})
}

func TestAPISendTypeDefaultsToInfo(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u"))
	sse.Ready(t)

	id := ts.send(t, map[string]any{"message": "no title, no type", "user_id": "u"})
	is.Equal(sse.NextNotification(t, id)["type"], "info")
	is.Equal(apiEntries(t, apiInbox(t, ts, "u", ""))[0]["type"], "info")
}

// ---------------------------------------------------------------- errors

type apiErrorCase struct {
	name    string
	body    any // string or []byte, sent as is
	headers []string
	status  int
	code    string
	field   string
}

func apiSendErrorCases() []apiErrorCase {
	channels := make([]string, 101)
	for i := range channels {
		channels[i] = fmt.Sprintf(`"c%d"`, i)
	}
	bad := http.StatusBadRequest
	return []apiErrorCase{
		{name: "malformed JSON", body: `{"title" "x", "user_id": "u1"}`, status: bad, code: "invalid_json"},
		{name: "truncated JSON", body: `{"title": "x", "user_id": "u1"`, status: bad, code: "invalid_json"},
		{name: "empty body", body: ``, status: bad, code: "invalid_json"},
		{name: "blank body", body: " \n", status: bad, code: "invalid_json"},
		{name: "not an object", body: `["x"]`, status: bad, code: "invalid_json"},
		{name: "trailing garbage", body: `{"title": "x", "user_id": "u1"} xyz`, status: bad, code: "invalid_json"},
		{name: "two objects", body: `{"title": "x", "user_id": "u1"}{"title": "y", "user_id": "u1"}`, status: bad, code: "invalid_json"},
		{name: "title is a number", body: `{"title": 5, "user_id": "u1"}`, status: bad, code: "validation_failed", field: "title"},
		{name: "channels is a string", body: `{"title": "x", "user_id": "u1", "channels": "x"}`, status: bad, code: "validation_failed", field: "channels"},
		{name: "user_ids is a string", body: `{"title": "x", "user_ids": "a"}`, status: bad, code: "validation_failed", field: "user_ids"},
		{name: "user_id is a float", body: `{"title": "x", "user_id": 4.2}`, status: bad, code: "validation_failed", field: "user_id"},
		{name: "user_id is an object", body: `{"title": "x", "user_id": {}}`, status: bad, code: "validation_failed", field: "user_id"},
		{name: "unknown field", body: `{"title": "x", "user_id": "u1", "usr_id": "u1"}`, status: bad, code: "unknown_field", field: "usr_id"},
		{name: "no title or message", body: `{"type": "info", "user_id": "u1"}`, status: bad, code: "validation_failed", field: "title"},
		{name: "no addressee", body: `{"title": "x"}`, status: bad, code: "validation_failed", field: "user_id"},
		{name: "empty channels and no user", body: `{"title": "x", "channels": []}`, status: bad, code: "validation_failed", field: "user_id"},
		{name: "user_id and user_ids", body: `{"title": "x", "user_id": "u1", "user_ids": ["u1"]}`, status: bad, code: "validation_failed", field: "user_ids"},
		{name: "empty user_ids", body: `{"title": "x", "user_ids": []}`, status: bad, code: "validation_failed", field: "user_ids"},
		{name: "bad user id chars", body: `{"title": "x", "user_id": "u1 OR 1=1"}`, status: bad, code: "validation_failed", field: "user_id"},
		{name: "empty user id", body: `{"title": "x", "user_id": ""}`, status: bad, code: "validation_failed", field: "user_id"},
		{name: "bad id in user_ids", body: `{"title": "x", "user_ids": ["u1", "u/2"]}`, status: bad, code: "validation_failed", field: "user_ids"},
		{name: "bad channel name", body: `{"title": "x", "user_id": "u1", "channels": ["bad channel"]}`, status: bad, code: "validation_failed", field: "channels"},
		{name: "too many channels", body: `{"title": "x", "user_id": "u1", "channels": [` + strings.Join(channels, ",") + `]}`, status: bad, code: "too_many_channels", field: "channels"},
		{name: "data is a non-empty array", body: `{"title": "x", "user_id": "u1", "data": [1]}`, status: bad, code: "validation_failed", field: "data"},
		{name: "data is a string", body: `{"title": "x", "user_id": "u1", "data": "x"}`, status: bad, code: "validation_failed", field: "data"},
		{name: "data is a number", body: `{"title": "x", "user_id": "u1", "data": 5}`, status: bad, code: "validation_failed", field: "data"},
		{name: "title too long", body: `{"title": "` + strings.Repeat("t", 1025) + `", "user_id": "u1"}`, status: bad, code: "validation_failed", field: "title"},
		{name: "control character in type", body: `{"type": "a\u0007b", "title": "x", "user_id": "u1"}`, status: bad, code: "validation_failed", field: "type"},
		{name: "invalid UTF-8", body: []byte("{\"title\": \"\xff\xfe\", \"user_id\": \"u1\"}"), status: bad, code: "invalid_json"},
		{name: "body too large", body: `{"title": "x", "user_id": "u1", "message": "` + strings.Repeat("m", 70<<10) + `"}`, status: http.StatusRequestEntityTooLarge, code: "body_too_large"},
		{name: "text/plain", body: `{"title": "x", "user_id": "u1"}`, headers: []string{"Content-Type", "text/plain"}, status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
		{name: "form encoded", body: `{"title": "x", "user_id": "u1"}`, headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
		{name: "Idempotency-Key too long", body: `{"title": "x", "user_id": "u1"}`, headers: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: bad, code: "validation_failed", field: "Idempotency-Key"},
	}
}

func TestAPISendErrors(t *testing.T) {
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u1", "channels", "c0"))
	sse.Ready(t)
	cases := append(apiSendErrorCases(), apiErrorCase{
		name: "scheduled_at on send", body: `{"title": "x", "user_id": "u1", "scheduled_at": "2030-01-01T00:00:00Z"}`,
		status: http.StatusBadRequest, code: "unknown_field", field: "scheduled_at",
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			status, body, hdr := ts.do(t, http.MethodPost, "/api/v1/notifications/send", tc.body, tc.headers...)
			apiWantError(t, status, body, hdr, tc.status, tc.code, tc.field)
			// A bad request changes nothing.
			is.Equal(apiInbox(t, ts, "u1", "")["total"], float64(0))
			is.Equal(len(ts.Logs.Records("send")), 0)
			is.Equal(len(ts.Logs.Records("delivery")), 0)
		})
	}
	// Nor did anything reach the live connection: the marker comes first.
	marker := ts.send(t, map[string]any{"title": "marker", "user_id": "u1"})
	sse.NextNotification(t, marker)
}

func TestAPIScheduleErrors(t *testing.T) {
	ts := newTestServer(t)
	future := `"scheduled_at": "` + apiAt(time.Now().Add(time.Hour)) + `"`
	bad := http.StatusBadRequest
	cases := []apiErrorCase{
		{name: "scheduled_at missing", body: `{"title": "x", "user_id": "u1"}`, status: bad, code: "validation_failed", field: "scheduled_at"},
		{name: "scheduled_at empty", body: `{"title": "x", "user_id": "u1", "scheduled_at": ""}`, status: bad, code: "validation_failed", field: "scheduled_at"},
		{name: "scheduled_at garbage", body: `{"title": "x", "user_id": "u1", "scheduled_at": "tomorrow at 5"}`, status: bad, code: "validation_failed", field: "scheduled_at"},
		{name: "scheduled_at without offset", body: `{"title": "x", "user_id": "u1", "scheduled_at": "2030-01-01T10:00:00"}`, status: bad, code: "validation_failed", field: "scheduled_at"},
		{name: "scheduled_at a number", body: `{"title": "x", "user_id": "u1", "scheduled_at": 1700000000}`, status: bad, code: "validation_failed", field: "scheduled_at"},
		{name: "scheduled_at over a year ahead", body: `{"title": "x", "user_id": "u1", "scheduled_at": "` + apiAt(time.Now().Add(367*24*time.Hour)) + `"}`, status: bad, code: "validation_failed", field: "scheduled_at"},
		{name: "scheduled_at a year and an hour ahead", body: `{"title": "x", "user_id": "u1", "scheduled_at": "` + apiAt(time.Now().AddDate(1, 0, 0).Add(time.Hour)) + `"}`, status: bad, code: "validation_failed", field: "scheduled_at"},
		{name: "no title or message", body: `{"user_id": "u1", ` + future + `}`, status: bad, code: "validation_failed", field: "title"},
		{name: "no addressee", body: `{"title": "x", ` + future + `}`, status: bad, code: "validation_failed", field: "user_id"},
		{name: "bad channel", body: `{"title": "x", "channels": ["a b"], ` + future + `}`, status: bad, code: "validation_failed", field: "channels"},
		{name: "data scalar", body: `{"title": "x", "user_id": "u1", "data": true, ` + future + `}`, status: bad, code: "validation_failed", field: "data"},
		{name: "unknown field", body: `{"title": "x", "user_id": "u1", "when": "now", ` + future + `}`, status: bad, code: "unknown_field", field: "when"},
		{name: "trailing garbage", body: `{"title": "x", "user_id": "u1", ` + future + `}]`, status: bad, code: "invalid_json"},
		{name: "text/plain", body: `{"title": "x", "user_id": "u1", ` + future + `}`, headers: []string{"Content-Type", "text/plain; charset=utf-8"}, status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
		{name: "body too large", body: `{"title": "x", "user_id": "u1", ` + future + `, "message": "` + strings.Repeat("m", 70<<10) + `"}`, status: http.StatusRequestEntityTooLarge, code: "body_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			status, body, hdr := ts.do(t, http.MethodPost, "/api/v1/notifications/schedule", tc.body, tc.headers...)
			apiWantError(t, status, body, hdr, tc.status, tc.code, tc.field)
			status, list, _ := ts.do(t, http.MethodGet, "/api/v1/schedules", nil)
			is.Equal(status, http.StatusOK)
			is.Equal(list["total"], float64(0))
			is.Equal(len(ts.Logs.Records("schedule")), 0)
			is.Equal(apiInbox(t, ts, "u1", "")["total"], float64(0))
		})
	}
	// Just under a year is fine.
	apiSchedule(t, ts, map[string]any{"title": "x", "user_id": "u1", "scheduled_at": apiAt(time.Now().Add(360 * 24 * time.Hour))})
}

func TestAPIUnknownRouteAndWrongMethod(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		method, path string
		status       int
		code         string
		allow        string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/api/v1/nope", http.StatusNotFound, "not_found", ""},
		{http.MethodPost, "/api/v2/notifications/send", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/api/v1/notifications/user/", http.StatusNotFound, "not_found", ""},
		{http.MethodPatch, "/health", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodPost, "/health", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodGet, "/api/v1/notifications/send", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{http.MethodPut, "/api/v1/notifications/schedule", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{http.MethodPost, "/api/v1/notifications/user/u1", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodGet, "/api/v1/notifications/u1/n1/read", http.StatusMethodNotAllowed, "method_not_allowed", "PUT"},
		{http.MethodPost, "/api/v1/schedules/s1", http.StatusMethodNotAllowed, "method_not_allowed", "DELETE"},
		{http.MethodGet, "/api/v1/connections/c1/subscribe", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			is := is.New(t)
			status, body, hdr := ts.do(t, tc.method, tc.path, nil)
			apiWantError(t, status, body, hdr, tc.status, tc.code, "")
			if tc.allow == "" {
				is.Equal(hdr.Get("Allow"), "")
				return
			}
			allow := hdr.Get("Allow")
			is.True(strings.Contains(allow, tc.allow)) // Allow lists the right method
			is.True(!strings.Contains(allow, tc.method))
		})
	}
}

// ---------------------------------------------------------------- inbox

// apiFill sends n notifications to user and returns their ids, oldest
// first.
func apiFill(t *testing.T, ts *testServer, user string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = ts.send(t, map[string]any{"title": fmt.Sprintf("n%d", i), "user_id": user})
	}
	return ids
}

func apiReversed(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[len(ids)-1-i] = id
	}
	return out
}

func TestAPIInboxNewestFirstAndCounts(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	ids := apiFill(t, ts, "u", 5)
	ts.send(t, map[string]any{"title": "someone else", "user_id": "v"})

	body := apiInbox(t, ts, "u", "")
	is.Equal(body["user_id"], "u")
	is.Equal(apiIDs(t, body), apiReversed(ids))
	is.Equal(body["total"], float64(5))
	is.Equal(body["unread"], float64(5))
	next, has := body["next_cursor"]
	is.True(has)
	is.Equal(next, nil)

	for _, id := range []string{ids[1], ids[3]} {
		status, _, _ := ts.do(t, http.MethodPut, apiPath("api", "v1", "notifications", "u", id, "read"), nil)
		is.Equal(status, http.StatusOK)
	}
	body = apiInbox(t, ts, "u", "")
	is.Equal(body["total"], float64(5))
	is.Equal(body["unread"], float64(3))

	for _, q := range []string{"unread=true", "unread=1"} {
		unread := apiInbox(t, ts, "u", q)
		is.Equal(apiIDs(t, unread), []string{ids[4], ids[2], ids[0]})
		is.Equal(unread["total"], float64(5)) // counts are the whole inbox's
		is.Equal(unread["unread"], float64(3))
	}
	is.Equal(apiIDs(t, apiInbox(t, ts, "u", "unread=false")), apiReversed(ids))
	// unread=true pages too.
	page := apiInbox(t, ts, "u", "unread=true&limit=2")
	is.Equal(apiIDs(t, page), []string{ids[4], ids[2]})
	page = apiInbox(t, ts, "u", "unread=true&limit=2&cursor="+page["next_cursor"].(string))
	is.Equal(apiIDs(t, page), []string{ids[0]})
	is.Equal(page["next_cursor"], nil)
}

func TestAPIInboxPagination(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	ids := apiFill(t, ts, "u", 7)

	var got []string
	var sizes []int
	q := "limit=3"
	for range 10 {
		body := apiInbox(t, ts, "u", q)
		page := apiIDs(t, body)
		got = append(got, page...)
		sizes = append(sizes, len(page))
		is.Equal(body["total"], float64(7))
		if body["next_cursor"] == nil {
			break
		}
		cursor, ok := body["next_cursor"].(string)
		is.True(ok) // next_cursor is a string
		q = "limit=3&cursor=" + url.QueryEscape(cursor)
	}
	is.Equal(sizes, []int{3, 3, 1})
	is.Equal(got, apiReversed(ids)) // no duplicate, no gap, newest first

	// A page ending exactly at the oldest says there is nothing more.
	body := apiInbox(t, ts, "u", "limit=7")
	is.Equal(len(apiIDs(t, body)), 7)
	is.Equal(body["next_cursor"], nil)
	// The maximum page size is accepted.
	is.Equal(len(apiIDs(t, apiInbox(t, ts, "u", "limit=200"))), 7)
}

func TestAPIInboxQueryErrors(t *testing.T) {
	ts := newTestServer(t)
	apiFill(t, ts, "u", 2)
	cases := []struct {
		name, path, field string
	}{
		{"limit zero", "/api/v1/notifications/user/u?limit=0", "limit"},
		{"limit negative", "/api/v1/notifications/user/u?limit=-1", "limit"},
		{"limit over max page size", "/api/v1/notifications/user/u?limit=201", "limit"},
		{"limit not a number", "/api/v1/notifications/user/u?limit=abc", "limit"},
		{"cursor not a number", "/api/v1/notifications/user/u?cursor=abc", "cursor"},
		{"cursor zero", "/api/v1/notifications/user/u?cursor=0", "cursor"},
		{"cursor negative", "/api/v1/notifications/user/u?cursor=-3", "cursor"},
		{"unread not a boolean", "/api/v1/notifications/user/u?unread=maybe", "unread"},
		{"bad user id", "/api/v1/notifications/user/bad%20user", "user_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := ts.do(t, http.MethodGet, tc.path, nil)
			apiWantError(t, status, body, hdr, http.StatusBadRequest, "validation_failed", tc.field)
		})
	}
}

func TestAPIInboxUnknownUserIsEmpty(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	body := apiInbox(t, ts, "nobody", "")
	is.Equal(body["user_id"], "nobody")
	is.Equal(body["notifications"], []any{}) // [] and not null
	is.Equal(body["total"], float64(0))
	is.Equal(body["unread"], float64(0))
	next, has := body["next_cursor"]
	is.True(has)
	is.Equal(next, nil)
	// Also an empty unread page of a user who has read everything.
	ids := apiFill(t, ts, "u", 1)
	status, _, _ := ts.do(t, http.MethodPut, "/api/v1/notifications/u/"+ids[0]+"/read", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(apiInbox(t, ts, "u", "unread=true")["notifications"], []any{})
}

func TestAPIInboxMarkRead(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	ids := apiFill(t, ts, "u", 2)
	path := "/api/v1/notifications/u/" + ids[0] + "/read"

	status, first, hdr := ts.do(t, http.MethodPut, path, nil)
	is.Equal(status, http.StatusOK)
	is.Equal(hdr.Get("Content-Type"), "application/json")
	is.Equal(first["id"], ids[0])
	is.Equal(first["read"], true)
	readAt := apiTime(t, first["read_at"])
	is.True(time.Since(readAt) < 5*time.Second)

	// Idempotent: the same read_at, the count unchanged.
	status, second, _ := ts.do(t, http.MethodPut, path, nil)
	is.Equal(status, http.StatusOK)
	is.Equal(second["read"], true)
	is.Equal(second["read_at"], first["read_at"])
	body := apiInbox(t, ts, "u", "")
	is.Equal(body["unread"], float64(1))
	is.Equal(apiEntries(t, body)[1]["read_at"], first["read_at"])
	_, unreadHasReadAt := apiEntries(t, body)[0]["read_at"]
	is.True(!unreadHasReadAt)

	cases := []struct{ name, path string }{
		{"unknown notification", "/api/v1/notifications/u/" + broker.NewID() + "/read"},
		{"unknown user", "/api/v1/notifications/nobody/" + ids[0] + "/read"},
		{"another user's notification", "/api/v1/notifications/v/" + ids[1] + "/read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := ts.do(t, http.MethodPut, tc.path, nil)
			apiWantError(t, status, body, hdr, http.StatusNotFound, "notification_not_found", "")
		})
	}
	is.Equal(len(ts.Logs.Records("read")), 1) // a repeated mark and failed marks change nothing and are not audited
	is.Equal(apiInbox(t, ts, "u", "")["unread"], float64(1))
}

func TestAPIInboxReadAllAndDelete(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	ids := apiFill(t, ts, "u", 3)
	apiFill(t, ts, "v", 1)

	status, body, _ := ts.do(t, http.MethodPut, "/api/v1/notifications/u/read-all", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body, map[string]any{"updated": float64(3)})
	status, body, _ = ts.do(t, http.MethodPut, "/api/v1/notifications/u/read-all", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body, map[string]any{"updated": float64(0)})
	is.Equal(apiInbox(t, ts, "u", "")["unread"], float64(0))
	is.Equal(apiInbox(t, ts, "v", "")["unread"], float64(1)) // only u's

	status, body, _ = ts.do(t, http.MethodPut, "/api/v1/notifications/nobody/read-all", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body, map[string]any{"updated": float64(0)})

	// Delete: 204 with no body, then 404; counts drop.
	unreadID := ts.send(t, map[string]any{"title": "unread one", "user_id": "u"})
	before := apiInbox(t, ts, "u", "")
	is.Equal(before["total"], float64(4))
	is.Equal(before["unread"], float64(1))

	path := "/api/v1/notifications/u/" + unreadID
	status, body, _ = ts.do(t, http.MethodDelete, path, nil)
	is.Equal(status, http.StatusNoContent)
	is.Equal(body, nil)
	after := apiInbox(t, ts, "u", "")
	is.Equal(after["total"], float64(3))
	is.Equal(after["unread"], float64(0))
	is.Equal(apiIDs(t, after), apiReversed(ids))

	status, body, hdr := ts.do(t, http.MethodDelete, path, nil)
	apiWantError(t, status, body, hdr, http.StatusNotFound, "notification_not_found", "")
	status, body, hdr = ts.do(t, http.MethodPut, path+"/read", nil)
	apiWantError(t, status, body, hdr, http.StatusNotFound, "notification_not_found", "")
	status, body, hdr = ts.do(t, http.MethodDelete, "/api/v1/notifications/nobody/"+ids[0], nil)
	apiWantError(t, status, body, hdr, http.StatusNotFound, "notification_not_found", "")

	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/notifications/u/"+ids[0], nil)
	is.Equal(status, http.StatusNoContent)
	is.Equal(apiInbox(t, ts, "u", "")["total"], float64(2))
}

// ---------------------------------------------------------------- pushes

func TestAPIPushInboxChangesToLiveConnections(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u"))
	sse.Ready(t)
	ws := ts.dialWS(t, query("user_id", "u"))
	ws.Ready(t)
	otherSSE := ts.dialSSE(t, query("user_id", "v"))
	otherSSE.Ready(t)
	otherWS := ts.dialWS(t, query("user_id", "v"))
	otherWS.Ready(t)

	ids := apiFill(t, ts, "u", 3)
	for _, id := range ids {
		for _, c := range []streamtest.Stream{sse, ws} {
			c.NextNotification(t, id)
		}
	}

	// both checks that the SSE and the WebSocket connection got event
	// next, with the fields given.
	both := func(event string, want map[string]any) {
		t.Helper()
		for _, c := range []streamtest.Stream{sse, ws} {
			m := c.NextEvent(t, event)
			is.Equal(m["user_id"], "u")
			for k, v := range want {
				is.Equal(m[k], v)
			}
		}
	}

	status, read, _ := ts.do(t, http.MethodPut, "/api/v1/notifications/u/"+ids[0]+"/read", nil)
	is.Equal(status, http.StatusOK)
	both("read", map[string]any{"id": ids[0], "unread": float64(2), "read_at": read["read_at"]})

	status, _, _ = ts.do(t, http.MethodPut, "/api/v1/notifications/u/read-all", nil)
	is.Equal(status, http.StatusOK)
	both("read_all", map[string]any{"updated": float64(2), "unread": float64(0)})

	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/notifications/u/"+ids[1], nil)
	is.Equal(status, http.StatusNoContent)
	both("deleted", map[string]any{"id": ids[1], "unread": float64(0)})

	// A new unread one, deleted unread: the count drops in the push.
	fresh := ts.send(t, map[string]any{"title": "fresh", "user_id": "u"})
	sse.NextNotification(t, fresh)
	ws.NextNotification(t, fresh)
	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/notifications/u/"+fresh, nil)
	is.Equal(status, http.StatusNoContent)
	both("deleted", map[string]any{"id": fresh, "unread": float64(0)})

	// The other user's connections got none of it: their next event is
	// their own notification.
	mine := ts.send(t, map[string]any{"title": "yours", "user_id": "v"})
	otherSSE.NextNotification(t, mine)
	otherWS.NextNotification(t, mine)
}

// ---------------------------------------------------------------- subscribe

func TestAPISubscribeConnection(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u"))
	ready := sse.Ready(t)
	connID, _ := ready["connection_id"].(string)
	is.True(connID != "")
	is.Equal(ready["channels"], []any{})

	status, sub, _ := ts.do(t, http.MethodPost, "/api/v1/connections/"+connID+"/subscribe", `{"channels":["news"]}`)
	is.Equal(status, http.StatusOK)
	is.Equal(sub["connection_id"], connID)
	is.Equal(sub["user_id"], "u")
	is.Equal(apiStrings(sub["channels"]), []string{"news"})
	ev := sse.NextEvent(t, "subscribed")
	is.Equal(ev["connection_id"], connID)
	is.Equal(apiStrings(ev["channels"]), []string{"news"})
	is.Equal(len(ts.Logs.Records("subscribe")), 1)

	news := ts.send(t, map[string]any{"title": "on news", "channels": []any{"news"}})
	sse.NextNotification(t, news)

	// Adding to the set keeps what was there.
	status, sub, _ = ts.do(t, http.MethodPost, "/api/v1/connections/"+connID+"/subscribe", `{"channels":["sports","news"]}`)
	is.Equal(status, http.StatusOK)
	is.Equal(apiStrings(sub["channels"]), []string{"news", "sports"})
	sse.NextEvent(t, "subscribed")

	status, sub, _ = ts.do(t, http.MethodPost, "/api/v1/connections/"+connID+"/unsubscribe", `{"channels":["news"]}`)
	is.Equal(status, http.StatusOK)
	is.Equal(apiStrings(sub["channels"]), []string{"sports"})
	ev = sse.NextEvent(t, "unsubscribed")
	is.Equal(apiStrings(ev["channels"]), []string{"news"})

	ts.send(t, map[string]any{"title": "missed", "channels": []any{"news"}})
	marker := ts.send(t, map[string]any{"title": "marker", "user_id": "u"})
	sse.NextNotification(t, marker)

	cases := []struct {
		name, path, body string
		status           int
		code, field      string
	}{
		{"unknown connection", "/api/v1/connections/" + broker.NewID() + "/subscribe", `{"channels":["news"]}`, http.StatusNotFound, "connection_not_found", ""},
		{"unknown connection unsubscribe", "/api/v1/connections/" + broker.NewID() + "/unsubscribe", `{"channels":["news"]}`, http.StatusNotFound, "connection_not_found", ""},
		{"bad channel", "/api/v1/connections/" + connID + "/subscribe", `{"channels":["no spaces"]}`, http.StatusBadRequest, "validation_failed", "channels"},
		{"no channels", "/api/v1/connections/" + connID + "/subscribe", `{"channels":[]}`, http.StatusBadRequest, "validation_failed", "channels"},
		{"channels a string", "/api/v1/connections/" + connID + "/subscribe", `{"channels":"news"}`, http.StatusBadRequest, "validation_failed", "channels"},
		{"unknown field", "/api/v1/connections/" + connID + "/subscribe", `{"channel":["news"]}`, http.StatusBadRequest, "unknown_field", "channel"},
		{"empty body", "/api/v1/connections/" + connID + "/subscribe", ``, http.StatusBadRequest, "invalid_json", ""},
		{"bad connection id", "/api/v1/connections/bad%20id/subscribe", `{"channels":["news"]}`, http.StatusBadRequest, "validation_failed", "connection_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := ts.do(t, http.MethodPost, tc.path, tc.body)
			apiWantError(t, status, body, hdr, tc.status, tc.code, tc.field)
		})
	}
	// None of the failures changed the connection or pushed anything.
	marker = ts.send(t, map[string]any{"title": "marker 2", "user_id": "u"})
	sse.NextNotification(t, marker)
	is.Equal(len(ts.Logs.Records("subscribe")), 2)
}

func TestAPISubscribeTooManyChannels(t *testing.T) {
	ts := newTestServer(t, func(o *testConfig) { o.MaxChannels = 2 })
	ready := ts.dialSSE(t, query("user_id", "u", "channels", "a,b")).Ready(t)
	status, body, hdr := ts.do(t, http.MethodPost, "/api/v1/connections/"+ready["connection_id"].(string)+"/subscribe", `{"channels":["c"]}`)
	apiWantError(t, status, body, hdr, http.StatusBadRequest, "too_many_channels", "channels")
}

// ---------------------------------------------------------------- idempotency

func TestAPIIdempotencyKeySend(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u"))
	sse.Ready(t)
	body := `{"title":"once","user_id":"u"}`
	const send = "/api/v1/notifications/send"

	status, first, hdr := ts.do(t, http.MethodPost, send, body, "Idempotency-Key", "k1")
	is.Equal(status, http.StatusCreated)
	is.Equal(hdr.Get("Idempotent-Replayed"), "")
	status, second, hdr := ts.do(t, http.MethodPost, send, body, "Idempotency-Key", "k1")
	is.Equal(status, http.StatusCreated)
	is.Equal(hdr.Get("Idempotent-Replayed"), "true")
	is.Equal(hdr.Get("Content-Type"), "application/json")
	is.Equal(second, first) // same id, same timestamp

	id := first["id"].(string)
	is.Equal(apiIDs(t, apiInbox(t, ts, "u", "")), []string{id})
	is.Equal(len(ts.Logs.Records("send")), 1)
	is.Equal(len(ts.Logs.Records("delivery")), 1)
	sse.NextNotification(t, id)
	marker := ts.send(t, map[string]any{"title": "marker", "user_id": "u"})
	sse.NextNotification(t, marker) // the retry delivered nothing

	// Same key, different body: refused, and nothing sent.
	status, resp, hdr := ts.do(t, http.MethodPost, send, `{"title":"twice","user_id":"u"}`, "Idempotency-Key", "k1")
	apiWantError(t, status, resp, hdr, http.StatusConflict, "idempotency_key_reused", "")
	// Same key and body on another endpoint is another request.
	status, resp, hdr = ts.do(t, http.MethodPost, "/api/v1/notifications/schedule", body, "Idempotency-Key", "k1")
	is.Equal(status, http.StatusBadRequest) // validation runs first: no scheduled_at
	apiWantError(t, status, resp, hdr, http.StatusBadRequest, "validation_failed", "scheduled_at")
	is.Equal(apiInbox(t, ts, "u", "")["total"], float64(2))

	// A request refused as invalid does not burn its key.
	status, resp, hdr = ts.do(t, http.MethodPost, send, `{"user_id":"u"}`, "Idempotency-Key", "k2")
	apiWantError(t, status, resp, hdr, http.StatusBadRequest, "validation_failed", "title")
	status, resp, hdr = ts.do(t, http.MethodPost, send, `{"title":"fixed","user_id":"u"}`, "Idempotency-Key", "k2")
	is.Equal(status, http.StatusCreated)
	is.Equal(hdr.Get("Idempotent-Replayed"), "")
	sse.NextNotification(t, resp["id"].(string))

	// Another key is another send, though the body is the same.
	status, resp, _ = ts.do(t, http.MethodPost, send, body, "Idempotency-Key", "k3")
	is.Equal(status, http.StatusCreated)
	is.True(resp["id"] != id)
	sse.NextNotification(t, resp["id"].(string))
	is.Equal(apiInbox(t, ts, "u", "")["total"], float64(4))
}

func TestAPIIdempotencyKeySchedule(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	const path = "/api/v1/notifications/schedule"
	at := apiAt(time.Now().Add(time.Hour))
	body := `{"title":"later","user_id":"u","scheduled_at":"` + at + `"}`

	// A refused request first: the key stays free.
	status, resp, hdr := ts.do(t, http.MethodPost, path, `{"title":"later","user_id":"u","scheduled_at":"soon"}`, "Idempotency-Key", "s1")
	apiWantError(t, status, resp, hdr, http.StatusBadRequest, "validation_failed", "scheduled_at")

	first := apiSchedule(t, ts, body, "Idempotency-Key", "s1")
	status, second, hdr := ts.do(t, http.MethodPost, path, body, "Idempotency-Key", "s1")
	is.Equal(status, http.StatusCreated)
	is.Equal(hdr.Get("Idempotent-Replayed"), "true")
	is.Equal(second, first)

	status, list, _ := ts.do(t, http.MethodGet, "/api/v1/schedules?user_id=u", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(list["total"], float64(1))
	is.Equal(len(ts.Logs.Records("schedule")), 1)

	status, resp, hdr = ts.do(t, http.MethodPost, path, `{"title":"other","user_id":"u","scheduled_at":"`+at+`"}`, "Idempotency-Key", "s1")
	apiWantError(t, status, resp, hdr, http.StatusConflict, "idempotency_key_reused", "")
	_, list, _ = ts.do(t, http.MethodGet, "/api/v1/schedules?user_id=u", nil)
	is.Equal(list["total"], float64(1))
}

// ---------------------------------------------------------------- schedules

func TestAPIScheduleFiresOnTimeOnce(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u"))
	sse.Ready(t)

	at := time.Now().Add(150 * time.Millisecond).UTC().Truncate(time.Millisecond)
	resp := apiSchedule(t, ts, map[string]any{"title": "due", "user_id": "u", "scheduled_at": apiAt(at)})
	id := resp["id"].(string)
	is.Equal(resp["scheduled_at"], apiAt(at))

	n := sse.NextNotification(t, id)
	arrived := time.Now()
	fired := apiTime(t, n["timestamp"])
	is.True(!fired.Before(at))      // not early
	is.True(!arrived.Before(at))    // not early
	lateness := arrived.Sub(at)     // generous: -race on a small machine;
	is.True(lateness < time.Second) // the scheduler's own tests hold 100 ms

	// Fired: no longer pending, and exactly once.
	status, body, hdr := ts.do(t, http.MethodGet, "/api/v1/schedules/"+id, nil)
	apiWantError(t, status, body, hdr, http.StatusNotFound, "schedule_not_found", "")
	status, body, hdr = ts.do(t, http.MethodDelete, "/api/v1/schedules/"+id, nil)
	apiWantError(t, status, body, hdr, http.StatusNotFound, "schedule_not_found", "")
	marker := ts.send(t, map[string]any{"title": "marker", "user_id": "u"})
	sse.NextNotification(t, marker)
	is.Equal(apiIDs(t, apiInbox(t, ts, "u", "")), []string{marker, id})

	streamtest.Eventually(t, "the fire audit record", func() bool { return len(ts.Logs.Records("fire")) == 1 })
	is.Equal(ts.Logs.Records("fire")[0]["schedule_id"], id)
	is.Equal(len(ts.Logs.Records("cancel")), 0)
}

func TestAPIScheduleListGetCancel(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	now := time.Now()
	s1 := apiSchedule(t, ts, map[string]any{"title": "one", "user_id": "u", "scheduled_at": apiAt(now.Add(2 * time.Hour))})
	s2 := apiSchedule(t, ts, map[string]any{"title": "two", "user_id": "u", "scheduled_at": apiAt(now.Add(time.Hour)), "channels": []any{"tareas"}})
	apiSchedule(t, ts, map[string]any{"title": "v's", "user_id": "v", "scheduled_at": apiAt(now.Add(30 * time.Minute))})
	batch := apiSchedule(t, ts, map[string]any{"title": "batch", "user_ids": []any{"u", "w"}, "scheduled_at": apiAt(now.Add(3 * time.Hour))})
	is.Equal(apiStrings(batch["user_ids"]), []string{"u", "w"})
	_, hasUser := batch["user_id"]
	is.True(!hasUser)

	status, list, _ := ts.do(t, http.MethodGet, "/api/v1/schedules?user_id=u", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(list["total"], float64(3))
	var ids []string
	for _, s := range list["schedules"].([]any) {
		m := s.(map[string]any)
		is.Equal(m["status"], "pending")
		ids = append(ids, m["id"].(string))
	}
	is.Equal(ids, []string{s2["id"].(string), s1["id"].(string), batch["id"].(string)}) // earliest first

	_, all, _ := ts.do(t, http.MethodGet, "/api/v1/schedules", nil)
	is.Equal(all["total"], float64(4))
	_, none, _ := ts.do(t, http.MethodGet, "/api/v1/schedules?user_id=nobody", nil)
	is.Equal(none["total"], float64(0))
	is.Equal(none["schedules"], []any{})
	status, body, hdr := ts.do(t, http.MethodGet, "/api/v1/schedules?user_id=bad%20user", nil)
	apiWantError(t, status, body, hdr, http.StatusBadRequest, "validation_failed", "user_id")

	id := s2["id"].(string)
	status, got, _ := ts.do(t, http.MethodGet, "/api/v1/schedules/"+id, nil)
	is.Equal(status, http.StatusOK)
	is.Equal(got["id"], id)
	is.Equal(got["user_id"], "u")
	is.Equal(got["title"], "two")
	is.Equal(got["type"], "info")
	is.Equal(apiStrings(got["channels"]), []string{"tareas"})
	is.Equal(got["scheduled_at"], s2["scheduled_at"])
	is.Equal(got["created_at"], s2["created_at"])
	is.Equal(got["status"], "pending")

	status, cancelled, _ := ts.do(t, http.MethodDelete, "/api/v1/schedules/"+id, nil)
	is.Equal(status, http.StatusOK)
	is.Equal(cancelled["id"], id)
	is.Equal(cancelled["status"], "cancelled")
	status, body, hdr = ts.do(t, http.MethodGet, "/api/v1/schedules/"+id, nil)
	apiWantError(t, status, body, hdr, http.StatusNotFound, "schedule_not_found", "")
	status, body, hdr = ts.do(t, http.MethodDelete, "/api/v1/schedules/"+id, nil)
	apiWantError(t, status, body, hdr, http.StatusNotFound, "schedule_not_found", "")
	status, body, hdr = ts.do(t, http.MethodGet, "/api/v1/schedules/"+broker.NewID(), nil)
	apiWantError(t, status, body, hdr, http.StatusNotFound, "schedule_not_found", "")
	_, list, _ = ts.do(t, http.MethodGet, "/api/v1/schedules?user_id=u", nil)
	is.Equal(list["total"], float64(2))

	rec := ts.Logs.Records("cancel")
	is.Equal(len(rec), 1)
	is.Equal(rec[0]["schedule_id"], id)
}

func TestAPIScheduleCancelledNeverFires(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u"))
	sse.Ready(t)
	start := time.Now()

	cancelled := apiSchedule(t, ts, map[string]any{"title": "cancelled", "user_id": "u", "scheduled_at": apiAt(start.Add(400 * time.Millisecond))})
	status, body, _ := ts.do(t, http.MethodDelete, "/api/v1/schedules/"+cancelled["id"].(string), nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body["status"], "cancelled")
	// A later item for the same user: when it arrives, the cancelled one
	// would have arrived before it.
	later := apiSchedule(t, ts, map[string]any{"title": "later", "user_id": "u", "scheduled_at": apiAt(start.Add(500 * time.Millisecond))})
	sse.NextNotification(t, later["id"].(string))
	is.Equal(apiIDs(t, apiInbox(t, ts, "u", "")), []string{later["id"].(string)})
}

func TestAPISchedulePastFiresAtOnceBatch(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "b"))
	sse.Ready(t)

	resp := apiSchedule(t, ts, map[string]any{
		"title": "overdue", "user_ids": []any{"a", "b", "a"}, "scheduled_at": "2020-01-01T00:00:00+02:00",
		"data": map[string]any{"k": "v"},
	})
	id := resp["id"].(string)
	is.Equal(resp["scheduled_at"], "2019-12-31T22:00:00Z")
	is.Equal(apiStrings(resp["user_ids"]), []string{"a", "b"})

	n := sse.NextNotification(t, id)
	is.Equal(n["data"], map[string]any{"k": "v"})
	for _, u := range []string{"a", "b"} {
		streamtest.Eventually(t, "the overdue notification in "+u+"'s inbox", func() bool {
			return apiInbox(t, ts, u, "")["total"] == float64(1)
		})
		is.Equal(apiIDs(t, apiInbox(t, ts, u, "")), []string{id})
	}
	_, list, _ := ts.do(t, http.MethodGet, "/api/v1/schedules", nil)
	is.Equal(list["total"], float64(0))
}

// ---------------------------------------------------------------- CORS

func TestAPICORS(t *testing.T) {
	t.Run("any origin", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t)
		status, body, hdr := ts.do(t, http.MethodOptions, "/sse?user_id=u", nil,
			"Origin", "https://app.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "last-event-id")
		is.Equal(status, http.StatusNoContent)
		is.Equal(body, nil)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "*")
		is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "") // a wildcard never carries cookies
		is.True(strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "GET"))
		is.True(strings.Contains(strings.ToLower(hdr.Get("Access-Control-Allow-Headers")), "last-event-id"))
		is.True(strings.Contains(hdr.Get("Vary"), "Origin"))

		status, _, hdr = ts.do(t, http.MethodGet, "/health", nil, "Origin", "https://app.example")
		is.Equal(status, http.StatusOK)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "*")
		is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "") // a wildcard never carries cookies

		status, _, hdr = ts.do(t, http.MethodGet, "/api/v1/notifications/user/u", nil, "Origin", "https://other.example")
		is.Equal(status, http.StatusOK)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "*")
		is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "") // a wildcard never carries cookies

		// Without Origin, no CORS headers.
		_, _, hdr = ts.do(t, http.MethodGet, "/health", nil)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "")
	})
	t.Run("restricted origins", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t, func(o *testConfig) {
			o.AllowedOrigins = []string{"https://app.example"}
		})
		status, _, hdr := ts.do(t, http.MethodGet, "/health", nil, "Origin", "https://app.example")
		is.Equal(status, http.StatusOK)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "https://app.example")
		is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "true")
		status, _, hdr = ts.do(t, http.MethodOptions, "/sse", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "GET")
		is.Equal(status, http.StatusNoContent)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "https://app.example")

		status, _, hdr = ts.do(t, http.MethodGet, "/health", nil, "Origin", "https://evil.example")
		is.Equal(status, http.StatusOK)
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "")
		status, body, hdr := ts.do(t, http.MethodOptions, "/sse", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
		is.True(status >= 400) // the preflight fails
		is.Equal(hdr.Get("Access-Control-Allow-Origin"), "")
		apiWantError(t, status, body, hdr, http.StatusForbidden, "origin_not_allowed", "")
	})
}

// ---------------------------------------------------------------- audit

func TestAPIAuditRecords(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u"))
	sse.Ready(t)

	id := ts.send(t, map[string]any{"title": "audited", "user_id": "u", "channels": []any{"c"}})
	send := ts.Logs.Records("send")
	is.Equal(len(send), 1)
	is.Equal(send[0]["notification_id"], id)
	is.Equal(apiStrings(send[0]["user_ids"]), []string{"u"})
	is.Equal(apiStrings(send[0]["channels"]), []string{"c"})
	is.Equal(send[0]["type"], "info")
	delivery := ts.Logs.Records("delivery")
	is.Equal(len(delivery), 1)
	is.Equal(delivery[0]["notification_id"], id)
	is.Equal(delivery[0]["connections"], float64(0)) // the connection is not on "c"

	direct := ts.send(t, map[string]any{"title": "direct", "user_id": "u"})
	sse.NextNotification(t, direct)
	delivery = ts.Logs.Records("delivery")
	is.Equal(len(delivery), 2)
	is.Equal(delivery[1]["notification_id"], direct)
	is.Equal(delivery[1]["connections"], float64(1))

	status, _, _ := ts.do(t, http.MethodPut, "/api/v1/notifications/u/"+id+"/read", nil)
	is.Equal(status, http.StatusOK)
	sse.NextEvent(t, "read")
	read := ts.Logs.Records("read")
	is.Equal(len(read), 1)
	is.Equal(read[0]["notification_id"], id)
	is.Equal(read[0]["user_id"], "u")

	status, _, _ = ts.do(t, http.MethodPut, "/api/v1/notifications/u/read-all", nil)
	is.Equal(status, http.StatusOK)
	sse.NextEvent(t, "read_all")
	readAll := ts.Logs.Records("read_all")
	is.Equal(len(readAll), 1)
	is.Equal(readAll[0]["user_id"], "u")
	is.Equal(readAll[0]["updated"], float64(1))

	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/notifications/u/"+id, nil)
	is.Equal(status, http.StatusNoContent)
	sse.NextEvent(t, "deleted")
	del := ts.Logs.Records("delete")
	is.Equal(len(del), 1)
	is.Equal(del[0]["notification_id"], id)
	is.Equal(del[0]["user_id"], "u")

	sched := apiSchedule(t, ts, map[string]any{"title": "later", "user_id": "u", "scheduled_at": apiAt(time.Now().Add(time.Hour))})
	rec := ts.Logs.Records("schedule")
	is.Equal(len(rec), 1)
	is.Equal(rec[0]["schedule_id"], sched["id"])
	is.Equal(apiStrings(rec[0]["user_ids"]), []string{"u"})
	is.True(rec[0]["scheduled_at"] != nil)

	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/schedules/"+sched["id"].(string), nil)
	is.Equal(status, http.StatusOK)
	rec = ts.Logs.Records("cancel")
	is.Equal(len(rec), 1)
	is.Equal(rec[0]["schedule_id"], sched["id"])
	is.Equal(apiStrings(rec[0]["user_ids"]), []string{"u"})

	due := apiSchedule(t, ts, map[string]any{"title": "now", "user_id": "u", "scheduled_at": apiAt(time.Now().Add(-time.Minute))})
	sse.NextNotification(t, due["id"].(string))
	streamtest.Eventually(t, "the fire audit record", func() bool { return len(ts.Logs.Records("fire")) == 1 })
	is.Equal(ts.Logs.Records("fire")[0]["schedule_id"], due["id"])

	for _, r := range append(send, read...) {
		is.True(r["remote_addr"] != nil && r["remote_addr"] != "")
	}
}
