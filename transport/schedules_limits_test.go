package transport_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/schedule"
)

// Pending schedules are bounded per user and in all: over a bound,
// scheduling answers 429 (as too_many_connections does) and stores
// nothing.

func TestAPISchedulePerUserBound(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(c *testConfig) { c.Schedule = schedule.Limits{PerUser: 5} })
	at := apiAt(time.Now().Add(time.Hour))

	// 20 at once: exactly 5 get in, however they interleave.
	type answer struct {
		status int
		body   map[string]any
		hdr    http.Header
	}
	answers := make(chan answer, 20)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			<-start
			status, body, hdr := ts.do(t, http.MethodPost, "/api/v1/notifications/schedule", map[string]any{"title": "t", "user_id": "u", "scheduled_at": at})
			answers <- answer{status, body, hdr}
		})
	}
	close(start)
	wg.Wait()
	close(answers)
	created := 0
	for a := range answers {
		if a.status == http.StatusCreated {
			created++
			continue
		}
		apiWantError(t, a.status, a.body, a.hdr, http.StatusTooManyRequests, "too_many_pending_schedules", "")
	}
	is.Equal(created, 5)
	_, total, _ := schedulePage(t, ts, "user_id=u")
	is.Equal(total, 5)
	is.Equal(len(ts.Logs.Records("schedule")), 5) // the refused are not recorded as scheduled
	denied := ts.Logs.Records("denied")           // but as denied, each once
	is.Equal(len(denied), 15)
	for _, d := range denied {
		is.Equal(d["code"], "too_many_pending_schedules")
		is.Equal(d["path"], "/api/v1/notifications/schedule")
	}

	// A batch is all or nothing, and says who is full.
	status, body, hdr := ts.do(t, http.MethodPost, "/api/v1/notifications/schedule", map[string]any{"title": "t", "user_ids": []any{"w", "u"}, "scheduled_at": at})
	apiWantError(t, status, body, hdr, http.StatusTooManyRequests, "too_many_pending_schedules", "")
	is.True(strings.Contains(body["error"].(map[string]any)["message"].(string), "user u "))
	_, total, _ = schedulePage(t, ts, "user_id=w")
	is.Equal(total, 0)
	_, total, _ = schedulePage(t, ts, "")
	is.Equal(total, 5)

	// Other users, and broadcasts, have room; a cancel makes room.
	apiSchedule(t, ts, map[string]any{"title": "t", "user_ids": []any{"w", "x"}, "scheduled_at": at})
	apiSchedule(t, ts, map[string]any{"title": "t", "channels": []any{"news"}, "scheduled_at": at})
	ids, _, _ := schedulePage(t, ts, "user_id=u&limit=1")
	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/schedules/"+ids[0], nil)
	is.Equal(status, http.StatusOK)
	apiSchedule(t, ts, map[string]any{"title": "t", "user_id": "u", "scheduled_at": at})
}

func TestAPIScheduleBoundAndIdempotencyKey(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(c *testConfig) { c.Schedule = schedule.Limits{PerUser: 1} })
	const path = "/api/v1/notifications/schedule"
	at := apiAt(time.Now().Add(time.Hour))
	first := apiSchedule(t, ts, map[string]any{"title": "one", "user_id": "u", "scheduled_at": at}, "Idempotency-Key", "k1")

	// The retry of a request that got in gets its answer, not a 429.
	status, again, hdr := ts.do(t, http.MethodPost, path, map[string]any{"title": "one", "user_id": "u", "scheduled_at": at}, "Idempotency-Key", "k1")
	is.Equal(status, http.StatusCreated)
	is.Equal(hdr.Get("Idempotent-Replayed"), "true")
	is.Equal(again, first)

	// A refused request leaves its key free: once there is room, its
	// retry gets in.
	other := map[string]any{"title": "two", "user_id": "u", "scheduled_at": at}
	status, body, hdr := ts.do(t, http.MethodPost, path, other, "Idempotency-Key", "k2")
	apiWantError(t, status, body, hdr, http.StatusTooManyRequests, "too_many_pending_schedules", "")
	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/schedules/"+first["id"].(string), nil)
	is.Equal(status, http.StatusOK)
	second := apiSchedule(t, ts, other, "Idempotency-Key", "k2")
	is.Equal(second["title"], "two")
}

func TestAPIScheduleTotalBound(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(c *testConfig) { c.Schedule = schedule.Limits{PerUser: 10, Total: 3} })
	at := apiAt(time.Now().Add(time.Hour))
	apiSchedule(t, ts, map[string]any{"title": "t", "channels": []any{"news"}, "scheduled_at": at})
	apiSchedule(t, ts, map[string]any{"title": "t", "user_ids": []any{"u", "v"}, "scheduled_at": at})
	apiSchedule(t, ts, map[string]any{"title": "t", "channels": []any{"news"}, "scheduled_at": at})
	for _, body := range []map[string]any{
		{"title": "t", "channels": []any{"news"}, "scheduled_at": at},
		{"title": "t", "user_id": "w", "scheduled_at": at},
	} {
		status, resp, hdr := ts.do(t, http.MethodPost, "/api/v1/notifications/schedule", body)
		apiWantError(t, status, resp, hdr, http.StatusTooManyRequests, "scheduler_full", "")
	}
	_, total, _ := schedulePage(t, ts, "")
	is.Equal(total, 3)
}
