package transport_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/internal/streamtest"
)

// POST /api/v1/notifications/schedule and /api/v1/schedules: firing on
// time and once, list, get, cancel, the errors, and the Idempotency-Key.

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

	cancelled := apiSchedule(t, ts, map[string]any{"title": "cancelled", "user_id": "u", "scheduled_at": apiAt(start.Add(1500 * time.Millisecond))})
	status, body, _ := ts.do(t, http.MethodDelete, "/api/v1/schedules/"+cancelled["id"].(string), nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body["status"], "cancelled")
	// A later item for the same user: when it arrives, the cancelled one
	// would have arrived before it.
	later := apiSchedule(t, ts, map[string]any{"title": "later", "user_id": "u", "scheduled_at": apiAt(start.Add(1600 * time.Millisecond))})
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
