package transport_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// POST /api/v1/notifications/send: who gets what, the errors, and the
// Idempotency-Key.

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
