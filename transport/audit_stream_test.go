package transport_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/audit"
	"notification-service/internal/streamtest"
)

// GET /api/v1/dashboard/audit/stream: the audit trail as an event stream,
// behind the API key, with the poll's query: a backlog, then what is new,
// filtered, in order, never twice; it ends when the server shuts down.

// withAPIKey is the tweak that sets the API key (secAPIKey).
func withAPIKey(c *testConfig) { c.APIKey = secAPIKey }

// auditStream opens the audit stream with the API key and the query given.
func (ts *testServer) auditStream(t *testing.T, q string) *sseClient {
	t.Helper()
	c := streamtest.DialSSE(t, ts.Client(), ts.URL+"/api/v1/dashboard/audit/stream?"+q, "Authorization", "Bearer "+secAPIKey)
	if c.Resp.StatusCode != http.StatusOK {
		t.Fatalf("audit stream: status %d", c.Resp.StatusCode)
	}
	return c
}

// nextAudit reads the next event, checks its framing (event: audit, id:
// the event's id) and decodes it.
func nextAudit(t *testing.T, c *sseClient) audit.Event {
	t.Helper()
	ev := c.NextRaw(t)
	if ev.Event != "audit" {
		t.Fatalf("event %q, want audit: %s", ev.Event, ev.Data)
	}
	var e audit.Event
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		t.Fatalf("data is not an event: %v: %s", err, ev.Data)
	}
	if e.ID == "" || ev.ID != e.ID {
		t.Fatalf("id: %q, the event's id %q", ev.ID, e.ID)
	}
	return e
}

// nextAudits reads n events and checks their ids grow.
func nextAudits(t *testing.T, c *sseClient, n int) []audit.Event {
	t.Helper()
	out := make([]audit.Event, n)
	for i := range out {
		out[i] = nextAudit(t, c)
		if i > 0 && !audit.IDAfter(out[i].ID, out[i-1].ID) {
			t.Fatalf("event %d: id %s after %s", i, out[i].ID, out[i-1].ID)
		}
	}
	return out
}

// trailHolds waits until the poll finds n events for the query: they are
// in the store.
func (ts *testServer) trailHolds(t *testing.T, q string, n int) []any {
	t.Helper()
	var events []any
	streamtest.Eventually(t, "the trail to hold the events", func() bool {
		_, body, _ := ts.do(t, http.MethodGet, "/api/v1/dashboard/audit?"+q, nil, "Authorization", "Bearer "+secAPIKey)
		events, _ = body["events"].([]any)
		return len(events) == n
	})
	return events
}

func notificationIDs(events []audit.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i], _ = e.Fields["notification_id"].(string)
	}
	return out
}

// TestAuditStreamBacklogThenLive: the latest `limit` matching events
// first, oldest first; then each new one as the trail has it, in order.
func TestAuditStreamBacklogThenLive(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, monitored, withAPIKey)
	var sent []string
	for _, title := range []string{"one", "two", "three"} {
		sent = append(sent, secSend(t, ts, map[string]any{"title": title, "user_id": "ann"}))
	}
	ts.trailHolds(t, "action=send", 3)

	c := ts.auditStream(t, "action=send&limit=2")
	is.Equal(c.Resp.Header.Get("Content-Type"), "text/event-stream")
	is.Equal(c.Resp.Header.Get("Cache-Control"), "no-cache")
	is.Equal(c.Resp.Header.Get("X-Accel-Buffering"), "no")
	backlog := nextAudits(t, c, 2)
	is.Equal(notificationIDs(backlog), sent[1:]) // the latest two, oldest first
	for _, e := range backlog {
		is.Equal(e.Action, "send")
		is.Equal(e.Instance, "test")
		is.Equal(e.UserIDs, []string{"ann"})
	}

	// Live: sent after the stream started, each arrives once, in order.
	later := []string{
		secSend(t, ts, map[string]any{"title": "four", "user_id": "bob"}),
		secSend(t, ts, map[string]any{"title": "five", "user_id": "bob"}),
	}
	live := nextAudits(t, c, 2)
	is.Equal(notificationIDs(live), later)
	is.True(audit.IDAfter(live[0].ID, backlog[1].ID))
}

// TestAuditStreamFilters: two viewers with different filters, each gets
// only its own events, backlog and live.
func TestAuditStreamFilters(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, monitored, withAPIKey)
	first := secSend(t, ts, map[string]any{"type": "tarea", "title": "t1", "user_id": "ann"})
	ts.trailHolds(t, "action=send", 1)

	ann := ts.auditStream(t, "user_id=ann&action=send")
	news := ts.auditStream(t, "channel=news&"+url.Values{"type": {"boletín"}}.Encode())
	is.Equal(notificationIDs(nextAudits(t, ann, 1)), []string{first}) // the backlog

	secSend(t, ts, map[string]any{"type": "tarea", "title": "t2", "user_id": "bob"}) // neither's
	broadcast := secSend(t, ts, map[string]any{"type": "boletín", "title": "n1", "channels": []string{"news"}})
	toAnn := secSend(t, ts, map[string]any{"type": "tarea", "title": "t3", "user_id": "ann"})

	got := nextAudit(t, ann)
	is.Equal(got.Action, "send")
	is.Equal(got.Fields["notification_id"], toAnn)

	// The broadcast: its delivery (recorded first by the memory bus) and
	// its send, nothing addressed to a user.
	evs := nextAudits(t, news, 2)
	for _, e := range evs {
		is.Equal(e.Fields["notification_id"], broadcast)
		is.Equal(e.Channels, []string{"news"})
		is.Equal(e.Type, "boletín")
	}
	is.Equal([]string{evs[0].Action, evs[1].Action}, []string{"delivery", "send"})

	// Nothing else came: a marker event after them is the next one each
	// reads.
	marker := secSend(t, ts, map[string]any{"type": "boletín", "title": "n2", "channels": []string{"news"}, "user_id": "ann"})
	is.Equal(nextAudit(t, ann).Fields["notification_id"], marker)
	is.Equal(nextAudit(t, news).Fields["notification_id"], marker)
}

// TestAuditStreamResumes: after= sends only what is newer, and a stream
// resumed from the last id it wrote repeats nothing.
func TestAuditStreamResumes(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, monitored, withAPIKey)
	a := secSend(t, ts, map[string]any{"title": "a", "user_id": "ann"})
	ts.trailHolds(t, "action=send", 1)

	c := ts.auditStream(t, "action=send")
	e := nextAudit(t, c)
	is.Equal(e.Fields["notification_id"], a)
	b := secSend(t, ts, map[string]any{"title": "b", "user_id": "ann"})
	e = nextAudit(t, c)
	is.Equal(e.Fields["notification_id"], b)
	c.Close()

	// Missed while away: c2, c3. Resumed after b: only those, then live.
	missed := []string{
		secSend(t, ts, map[string]any{"title": "c2", "user_id": "ann"}),
		secSend(t, ts, map[string]any{"title": "c3", "user_id": "ann"}),
	}
	ts.trailHolds(t, "action=send", 4)
	resumed := ts.auditStream(t, "action=send&after="+e.ID)
	is.Equal(notificationIDs(nextAudits(t, resumed, 2)), missed)
	d := secSend(t, ts, map[string]any{"title": "d", "user_id": "ann"})
	is.Equal(nextAudit(t, resumed).Fields["notification_id"], d)
}

// TestAuditStreamRefusals: the API key, and the query, are checked before
// the stream starts, answered as JSON errors.
func TestAuditStreamRefusals(t *testing.T) {
	ts := newTestServer(t, monitored, withAPIKey)
	for _, tc := range []struct {
		name, query string
		headers     []string
		status      int
		code, field string
	}{
		{"no key", "", nil, http.StatusUnauthorized, "api_key_missing", ""},
		{"wrong key", "", []string{"Authorization", "Bearer not-the-key-at-all-0000"}, http.StatusUnauthorized, "api_key_invalid", ""},
		{"bad after", "after=yesterday", []string{"Authorization", "Bearer " + secAPIKey}, http.StatusBadRequest, "validation_failed", "after"},
		{"bad limit", "limit=201", []string{"Authorization", "Bearer " + secAPIKey}, http.StatusBadRequest, "validation_failed", "limit"},
		{"bad user", "user_id=a%20b", []string{"Authorization", "Bearer " + secAPIKey}, http.StatusBadRequest, "validation_failed", "user_id"},
		{"bad channel", "channel=a%20b", []string{"Authorization", "Bearer " + secAPIKey}, http.StatusBadRequest, "validation_failed", "channel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			status, body, h := ts.do(t, http.MethodGet, "/api/v1/dashboard/audit/stream?"+tc.query, nil, tc.headers...)
			is.Equal(status, tc.status)
			is.Equal(h.Get("Content-Type"), "application/json")
			e := body["error"].(map[string]any)
			is.Equal(e["code"], tc.code)
			if tc.field != "" {
				is.Equal(e["field"], tc.field)
			}
		})
	}

	t.Run("not enabled", func(t *testing.T) {
		is := is.New(t)
		plain := newTestServer(t)
		status, body, _ := plain.do(t, http.MethodGet, "/api/v1/dashboard/audit/stream", nil)
		is.Equal(status, http.StatusNotFound)
		is.Equal(body["error"].(map[string]any)["code"], "not_enabled")
	})
}

// TestAuditStreamEndsOnShutdown: http.Server.Shutdown ends open audit
// streams (its CloseStreams hook), quiet or not, and is not held up by
// them.
func TestAuditStreamEndsOnShutdown(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, monitored, withAPIKey)
	secSend(t, ts, map[string]any{"title": "a", "user_id": "ann"})
	ts.trailHolds(t, "action=send", 1)
	quiet := ts.auditStream(t, "user_id=nobody") // nothing to write: it waits
	busy := ts.auditStream(t, "action=send")
	nextAudit(t, busy)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	start := time.Now()
	is.NoErr(ts.Config.Shutdown(ctx))
	is.True(time.Since(start) < waitTimeout/2) // not waited out
	quiet.Ended(t)
	busy.Ended(t)
	is.NoErr(quiet.Err)
	is.NoErr(busy.Err)
}

// TestAuditStreamKeepalive: a stream with nothing to write gets a comment
// every heartbeat interval, paced by the one tailer.
func TestAuditStreamKeepalive(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, monitored, withAPIKey, func(c *testConfig) { c.HeartbeatInterval = 100 * time.Millisecond })
	c := ts.auditStream(t, "user_id=nobody")
	is.Equal(c.NextComment(t), ": keepalive")
	is.Equal(c.NextComment(t), ": keepalive")
}
