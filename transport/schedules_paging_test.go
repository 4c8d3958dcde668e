package transport_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// GET /api/v1/schedules a page at a time: limit, cursor, next_cursor,
// total, and a listing continued while schedules come, fire and go.

// schedulePage gets one page of GET /api/v1/schedules with the query
// given, failing unless 200, and returns its ids, total and next_cursor
// ("" on the last page, which must say null).
func schedulePage(t *testing.T, ts *testServer, query string) (ids []string, total int, next string) {
	t.Helper()
	status, body, _ := ts.do(t, http.MethodGet, "/api/v1/schedules?"+query, nil)
	if status != http.StatusOK {
		t.Fatalf("list %s: status %d: %v", query, status, body)
	}
	list, ok := body["schedules"].([]any)
	if !ok {
		t.Fatalf("list %s: no schedules array: %v", query, body)
	}
	for _, s := range list {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	raw, present := body["next_cursor"]
	if !present {
		t.Fatalf("list %s: no next_cursor: %v", query, body)
	}
	if raw != nil {
		next = raw.(string)
		if next == "" {
			t.Fatalf("list %s: empty next_cursor", query)
		}
	}
	return ids, int(body["total"].(float64)), next
}

// scheduleAll follows the listing from query's first page to its last,
// checking that each page counts total, and returns the ids in order.
func scheduleAll(t *testing.T, ts *testServer, query string, total int) []string {
	t.Helper()
	var all []string
	cursor := ""
	for {
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		ids, n, next := schedulePage(t, ts, q)
		if n != total {
			t.Fatalf("list %s: total %d, want %d", q, n, total)
		}
		all = append(all, ids...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

func TestAPISchedulesPages(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	now := time.Now()
	var all, mine []string
	// Added out of order; the listing is by scheduled_at, then id.
	for _, h := range []int{5, 2, 7, 1, 4, 3, 6} {
		user := "u"
		if h == 4 {
			user = "v"
		}
		resp := apiSchedule(t, ts, map[string]any{"title": "t", "user_id": user, "scheduled_at": apiAt(now.Add(time.Duration(h) * time.Hour))})
		all = append(all, resp["id"].(string))
	}
	broadcast := apiSchedule(t, ts, map[string]any{"title": "all", "channels": []any{"news"}, "scheduled_at": apiAt(now.Add(150 * time.Minute))})
	// In time order: 1 2 broadcast 3 4(v) 5 6 7.
	byHour := map[int]string{}
	for i, h := range []int{5, 2, 7, 1, 4, 3, 6} {
		byHour[h] = all[i]
	}
	all = []string{byHour[1], byHour[2], broadcast["id"].(string), byHour[3], byHour[4], byHour[5], byHour[6], byHour[7]}
	mine = []string{byHour[1], byHour[2], byHour[3], byHour[5], byHour[6], byHour[7]}

	for _, limit := range []int{1, 3, 8, 200} {
		is.Equal(scheduleAll(t, ts, fmt.Sprintf("limit=%d", limit), len(all)), all)
		is.Equal(scheduleAll(t, ts, fmt.Sprintf("limit=%d&user_id=u", limit), len(mine)), mine)
	}
	// A page exactly as long as what is left is the last one.
	ids, total, next := schedulePage(t, ts, "limit=8")
	is.Equal(ids, all)
	is.Equal(total, 8)
	is.Equal(next, "")
	ids, _, next = schedulePage(t, ts, "user_id=nobody")
	is.Equal(len(ids), 0)
	is.Equal(next, "")
}

func TestAPISchedulesDefaultPage(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(c *testConfig) { c.MaxPageSize = 60 })
	at := apiAt(time.Now().Add(time.Hour))
	for range 51 {
		apiSchedule(t, ts, map[string]any{"title": "t", "user_id": "u", "scheduled_at": at})
	}
	ids, total, next := schedulePage(t, ts, "")
	is.Equal(len(ids), 50) // the default
	is.Equal(total, 51)
	is.True(next != "")
	ids, _, next = schedulePage(t, ts, "cursor="+url.QueryEscape(next))
	is.Equal(len(ids), 1)
	is.Equal(next, "")
	// The default never exceeds the largest page.
	small := newTestServer(t, func(c *testConfig) { c.MaxPageSize = 10 })
	for range 11 {
		apiSchedule(t, small, map[string]any{"title": "t", "user_id": "u", "scheduled_at": at})
	}
	ids, _, _ = schedulePage(t, small, "")
	is.Equal(len(ids), 10)
}

// TestAPISchedulesPagesAcrossChanges continues a listing after its first
// page's first schedule fired, its last (the cursor's) was cancelled, and
// schedules were added before and after the place reached: nothing is
// repeated or skipped, the earlier addition is not seen, the later one is.
func TestAPISchedulesPagesAcrossChanges(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	now := time.Now()
	schedule := func(at time.Time) string {
		return apiSchedule(t, ts, map[string]any{"title": "t", "user_id": "u", "scheduled_at": apiAt(at)})["id"].(string)
	}
	soon := schedule(now.Add(time.Second)) // read on the first page, well before it fires
	var later []string
	for h := 1; h <= 4; h++ {
		later = append(later, schedule(now.Add(time.Duration(h)*time.Hour)))
	}
	ids, total, next := schedulePage(t, ts, "user_id=u&limit=2")
	is.Equal(ids, []string{soon, later[0]})
	is.Equal(total, 5)

	streamtest.Eventually(t, "the first schedule to fire", func() bool {
		status, _, _ := ts.do(t, http.MethodGet, "/api/v1/schedules/"+soon, nil)
		return status == http.StatusNotFound
	})
	status, _, _ := ts.do(t, http.MethodDelete, "/api/v1/schedules/"+later[0], nil)
	is.Equal(status, http.StatusOK)
	before := schedule(now.Add(30 * time.Minute))
	after := schedule(now.Add(150 * time.Minute))

	var rest []string
	for next != "" {
		ids, total, next = schedulePage(t, ts, "user_id=u&limit=2&cursor="+url.QueryEscape(next))
		is.Equal(total, 5) // before, later[1:], after: counted, wherever they are
		rest = append(rest, ids...)
	}
	is.Equal(rest, []string{later[1], after, later[2], later[3]})
	is.True(!strings.Contains(strings.Join(rest, " "), before))
}

func TestAPISchedulesPageErrors(t *testing.T) {
	ts := newTestServer(t)
	apiSchedule(t, ts, map[string]any{"title": "t", "user_id": "u", "scheduled_at": apiAt(time.Now().Add(time.Hour))})
	b64 := base64.RawURLEncoding.EncodeToString
	bad := http.StatusBadRequest
	for _, tc := range []struct{ name, query, field string }{
		{"limit zero", "limit=0", "limit"},
		{"limit negative", "limit=-1", "limit"},
		{"limit over the largest page", "limit=201", "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"limit a fraction", "limit=1.5", "limit"},
		{"cursor not base64", "cursor=" + url.QueryEscape("!!!"), "cursor"},
		{"cursor without a time", "cursor=" + b64([]byte("abc")), "cursor"},
		{"cursor with a bad time", "cursor=" + b64([]byte("soon:01")), "cursor"},
		{"cursor with a bad id", "cursor=" + b64([]byte("1700000000000:a b")), "cursor"},
		{"cursor with an empty id", "cursor=" + b64([]byte("1700000000000:")), "cursor"},
		{"cursor too long", "cursor=" + b64([]byte("1:"+strings.Repeat("a", 200))), "cursor"},
		{"cursor as the inbox's", "cursor=42", "cursor"},
		{"user_id", "user_id=" + url.QueryEscape("bad user"), "user_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := ts.do(t, http.MethodGet, "/api/v1/schedules?"+tc.query, nil)
			apiWantError(t, status, body, hdr, bad, "validation_failed", tc.field)
		})
	}
}
