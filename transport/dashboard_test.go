package transport_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// The dashboard's API and the analytics: who may call them, what they
// refuse, and what they show after a scripted scenario.

var dashboardPaths = []string{"/api/v1/dashboard/stats", "/api/v1/dashboard/audit", "/api/v1/analytics"}

func TestDashboardNeedsTheAPIKey(t *testing.T) {
	ts := newTestServer(t, monitored, func(c *testConfig) { c.APIKey = secAPIKey })
	user := secToken(t, "ann", nil, time.Hour) // no JWT secret here: just a wrong key
	for _, path := range dashboardPaths {
		for _, tc := range []struct {
			name    string
			headers []string
			status  int
			code    string
		}{
			{"no key", nil, http.StatusUnauthorized, "api_key_missing"},
			{"wrong key", []string{"Authorization", "Bearer not-the-key-at-all-0000"}, http.StatusUnauthorized, "api_key_invalid"},
			{"a token", []string{"Authorization", "Bearer " + user}, http.StatusUnauthorized, "api_key_invalid"},
			{"key in a query", nil, http.StatusUnauthorized, "api_key_missing"},
			{"bearer key", []string{"Authorization", "Bearer " + secAPIKey}, http.StatusOK, ""},
			{"X-API-Key", []string{"X-API-Key", secAPIKey}, http.StatusOK, ""},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				is := is.New(t)
				p := path
				if tc.name == "key in a query" {
					p += "?api_key=" + secAPIKey + "&token=" + secAPIKey
				}
				status, body, h := ts.do(t, http.MethodGet, p, nil, tc.headers...)
				is.Equal(status, tc.status)
				if tc.code != "" {
					is.Equal(body["error"].(map[string]any)["code"], tc.code)
					is.True(h.Get("WWW-Authenticate") != "")
				}
			})
		}
	}
	// Refusals are audited as denied, never with the key.
	is := is.New(t)
	is.Equal(len(ts.Logs.Records("denied")), 4*len(dashboardPaths)) // each refusal above, once
	is.True(!strings.Contains(ts.Logs.text(), secAPIKey))
}

func TestDashboardIsSameOriginOnly(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, monitored)
	for _, path := range dashboardPaths {
		status, _, h := ts.do(t, http.MethodGet, path, nil, "Origin", "https://evil.example")
		is.Equal(status, http.StatusOK) // open mode; but no page elsewhere may read it:
		is.Equal(h.Get("Access-Control-Allow-Origin"), "")
		status, _, h = ts.do(t, http.MethodOptions, path, nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "authorization")
		is.Equal(status, http.StatusMethodNotAllowed) // no preflight: a header-carrying request from elsewhere never leaves
		is.Equal(h.Get("Access-Control-Allow-Origin"), "")
	}
}

func TestDashboardValidation(t *testing.T) {
	ts := newTestServer(t, monitored)
	today := time.Now().UTC()
	day := func(d int) string { return today.AddDate(0, 0, d).Format("2006-01-02") }
	for _, tc := range []struct {
		path, field string
	}{
		{"/api/v1/analytics?from=yesterday", "from"},
		{"/api/v1/analytics?to=2026-13-01", "to"},
		{"/api/v1/analytics?from=2026-02-30", "from"},
		{"/api/v1/analytics?from=" + day(0) + "&to=" + day(-1), "from"},
		{"/api/v1/analytics?from=" + day(-31) + "&to=" + day(0), "from"}, // 32 days: past 30 days of retention and today
		{"/api/v1/analytics?type=" + url.QueryEscape("a\x01b"), "type"},
		{"/api/v1/analytics?type=" + strings.Repeat("t", 201), "type"},
		{"/api/v1/dashboard/audit?after=nope", "after"},
		{"/api/v1/dashboard/audit?user_id=" + url.QueryEscape("a b"), "user_id"},
		{"/api/v1/dashboard/audit?channel=" + url.QueryEscape("a b"), "channel"},
		{"/api/v1/dashboard/audit?limit=0", "limit"},
		{"/api/v1/dashboard/audit?limit=201", "limit"},
		{"/api/v1/dashboard/audit?type=" + url.QueryEscape("\n"), "type"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			is := is.New(t)
			status, body, _ := ts.do(t, http.MethodGet, tc.path, nil)
			is.Equal(status, http.StatusBadRequest)
			e := body["error"].(map[string]any)
			is.Equal(e["code"], "validation_failed")
			is.Equal(e["field"], tc.field)
		})
	}
	is := is.New(t)
	status, body, _ := ts.do(t, http.MethodGet, "/api/v1/analytics?from="+day(-30)+"&to="+day(0), nil)
	is.Equal(status, http.StatusOK) // 31 days is the most
	is.Equal(body["from"], day(-30))
	status, body, _ = ts.do(t, http.MethodGet, "/api/v1/analytics", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(body["from"], day(-6)) // a week by default
	is.Equal(body["to"], day(0))
}

func TestDashboardNotEnabled(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range dashboardPaths {
		is := is.New(t)
		status, body, _ := ts.do(t, http.MethodGet, path, nil)
		is.Equal(status, http.StatusNotFound)
		is.Equal(body["error"].(map[string]any)["code"], "not_enabled")
	}
}

// TestDashboardStatsAreSharedByViewers: stats are made at most once per
// statsEvery (900 ms) however many dashboards ask: ten asking at once,
// then one after another, cost one list of the instances per window.
func TestDashboardStatsAreSharedByViewers(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, monitored)
	start := time.Now()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			status, _, _ := ts.do(t, http.MethodGet, "/api/v1/dashboard/stats", nil)
			is.Equal(status, http.StatusOK)
		})
	}
	wg.Wait()
	for range 10 {
		status, _, _ := ts.do(t, http.MethodGet, "/api/v1/dashboard/stats", nil)
		is.Equal(status, http.StatusOK)
	}
	windows := int64(time.Since(start)/(900*time.Millisecond)) + 1
	lists := ts.Monitoring.Registry.lists.Load()
	t.Logf("20 stats answers in %v: %d lists of the instances", time.Since(start), lists)
	is.True(lists >= 1 && lists <= windows)
}

// TestDashboardScenario: three connections, five sends (one to two users,
// one broadcast nobody hears), two reads (one twice), a schedule; the
// analytics, the stats and the trail show exactly that.
func TestDashboardScenario(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, monitored)
	ann := ts.dialSSE(t, "user_id=ann&channels=news")
	bob := ts.dialSSE(t, "user_id=bob")
	ws := ts.dialWS(t, "user_id=carl")
	for _, c := range []streamtest.Stream{ann, bob, ws} {
		c.Ready(t)
	}
	ids := []string{
		ts.send(t, map[string]any{"type": "tarea", "title": "t1", "user_id": "ann"}),
		ts.send(t, map[string]any{"type": "tarea", "title": "t2", "user_ids": []string{"ann", "bob"}}),
		ts.send(t, map[string]any{"type": "tarea", "title": "t3", "user_id": "dora"}), // offline
		ts.send(t, map[string]any{"type": "news", "title": "n1", "channels": []string{"news"}}),
		ts.send(t, map[string]any{"type": "news", "title": "n2", "channels": []string{"quiet"}}), // nobody listens
	}
	ann.NextNotifications(t, 3)
	bob.NextNotifications(t, 1)
	for _, read := range []string{"ann/" + ids[0], "bob/" + ids[1], "bob/" + ids[1]} { // the second is a no-op
		status, _, _ := ts.do(t, http.MethodPut, "/api/v1/notifications/"+read+"/read", nil)
		is.Equal(status, http.StatusOK)
	}
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	status, _, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/schedule", map[string]any{"user_id": "ann", "type": "recordatorio", "title": "later", "scheduled_at": at})
	is.Equal(status, http.StatusCreated)

	// Analytics: tarea 4 copies sent (one to two users), 3 delivered
	// (dora is offline), 2 read; news 2 sent, 1 delivered.
	type row struct{ sent, delivered, read float64 }
	figures := func() map[string]row {
		_, body, _ := ts.do(t, http.MethodGet, "/api/v1/analytics", nil)
		out := map[string]row{}
		for _, r := range body["types"].([]any) {
			m := r.(map[string]any)
			out[m["type"].(string)] = row{m["sent"].(float64), m["delivered"].(float64), m["read"].(float64)}
		}
		return out
	}
	want := map[string]row{"tarea": {4, 3, 2}, "news": {2, 1, 0}}
	streamtest.Eventually(t, "the analytics to show the scenario", func() bool { return fmt.Sprint(figures()) == fmt.Sprint(want) })
	_, body, _ := ts.do(t, http.MethodGet, "/api/v1/analytics?type=tarea", nil)
	day := body["days"].([]any)[0].(map[string]any)
	is.Equal(day["date"], time.Now().UTC().Format("2006-01-02"))
	is.Equal(day["read_rate"], 0.5)
	median := day["median_time_to_read_seconds"].(float64)
	is.True(median > 0 && median <= 0.5) // read within a second (bucket 0, reported as its middle), and measured
	is.Equal(len(body["types"].([]any)), 1)

	// Stats: the one instance, its connections, the schedule.
	var stats map[string]any
	streamtest.Eventually(t, "the stats to show three connections", func() bool {
		_, stats, _ = ts.do(t, http.MethodGet, "/api/v1/dashboard/stats", nil)
		insts := stats["instances"].([]any)
		if len(insts) != 1 {
			return false
		}
		c := insts[0].(map[string]any)["connections"].(map[string]any)
		return c["sse"] == 2.0 && c["ws"] == 1.0
	})
	inst := stats["instances"].([]any)[0].(map[string]any)
	is.Equal(inst["id"], "test")
	is.Equal(inst["self"], true)
	is.Equal(stats["mode"], "memory")
	is.Equal(stats["redis"], nil)
	sched := stats["schedules"].(map[string]any)
	is.Equal(sched["pending"], 1.0)
	is.Equal(sched["next"].([]any)[0].(map[string]any)["title"], "later")

	// The trail, filtered by user, type and channel.
	actionsOf := func(q string) []string {
		_, body, _ := ts.do(t, http.MethodGet, "/api/v1/dashboard/audit?"+q, nil)
		var out []string
		for _, e := range body["events"].([]any) {
			out = append(out, e.(map[string]any)["action"].(string))
		}
		return out
	}
	streamtest.Eventually(t, "bob's events in the trail", func() bool {
		// Newest first; the memory bus delivers before Publish returns, so
		// a delivery is recorded before its send.
		return fmt.Sprint(actionsOf("user_id=bob")) == "[read send delivery connect]"
	})
	is.Equal(actionsOf("type=news&action=send"), []string{"send", "send"})
	is.Equal(actionsOf("channel=quiet"), []string{"send", "delivery"})
	is.Equal(actionsOf("user_id=bob&type=news"), []string(nil))
	// The schedule is the scenario's last event: once it is in the trail,
	// nothing newer comes.
	streamtest.Eventually(t, "the schedule in the trail", func() bool {
		return fmt.Sprint(actionsOf("limit=1")) == "[schedule]"
	})
	_, body, _ = ts.do(t, http.MethodGet, "/api/v1/dashboard/audit?limit=1", nil)
	last := body["last"].(string)
	is.Equal(body["events"].([]any)[0].(map[string]any)["id"], last)
	_, body, _ = ts.do(t, http.MethodGet, "/api/v1/dashboard/audit?after="+last, nil)
	is.Equal(len(body["events"].([]any)), 0) // nothing new since
	is.Equal(body["last"], last)
}
