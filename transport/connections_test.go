package transport_test

import (
	"net/http"
	"testing"

	"github.com/matryer/is"

	"notification-service/broker"
)

// POST /api/v1/connections/{connection_id}/subscribe and /unsubscribe.

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
