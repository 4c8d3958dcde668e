package transport_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/internal/streamtest"
)

// The inbox: listing, paging, marking read, deleting, and the changes
// pushed to the user's live connections.

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
