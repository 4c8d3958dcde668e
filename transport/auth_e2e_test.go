package transport_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// TestTokenModeEndToEnd: a browser holding a token receives what the
// backend sends with the API key, on a real SSE client (token in the URL,
// the cookie or the Authorization header) and a real WebSocket, and reads
// and marks its own inbox.
func TestTokenModeEndToEnd(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, secured)
	tok := secToken(t, "alice", []string{"orders.*"}, time.Hour)

	viaQuery := ts.dialSSE(t, query("token", tok, "channels", "orders.eu"))
	ready := viaQuery.Ready(t)
	is.Equal(ready["user_id"], "alice")
	is.Equal(apiStrings(ready["channels"]), []string{"orders.eu"})
	viaCookie := ts.dialSSE(t, query("user_id", "alice"), "Cookie", secCookie+"="+tok)
	viaCookie.Ready(t)
	viaHeader := ts.dialSSE(t, "", "Authorization", "Bearer "+tok)
	viaHeader.Ready(t)
	ws := ts.dialWS(t, query("token", tok))
	is.Equal(ws.Ready(t)["user_id"], "alice")
	ws.Send(t, map[string]any{"action": "subscribe", "channels": []string{"orders.eu"}})
	ws.NextEvent(t, "subscribed")
	for _, c := range []*sseClient{viaQuery, viaCookie, viaHeader} {
		c.NextEvent(t, "subscribed") // every tab hears of it
	}

	direct := secSend(t, ts, map[string]any{"title": "for alice", "user_id": "alice"})
	for _, c := range []*sseClient{viaQuery, viaCookie, viaHeader} {
		c.NextNotification(t, direct)
	}
	ws.NextNotification(t, direct)
	broadcast := secSend(t, ts, map[string]any{"title": "an order", "channels": []string{"orders.eu"}})
	viaQuery.NextNotification(t, broadcast)
	ws.NextNotification(t, broadcast)

	// The token reads and marks its own inbox, from any of its places.
	for _, h := range [][]string{{"Authorization", "Bearer " + tok}, {"Cookie", secCookie + "=" + tok}} {
		status, body, _ := ts.do(t, http.MethodGet, "/api/v1/notifications/user/alice", nil, h...)
		is.Equal(status, http.StatusOK)
		is.Equal(apiIDs(t, body), []string{direct})
	}
	status, _, _ := ts.do(t, http.MethodPut, "/api/v1/notifications/alice/"+direct+"/read?"+query("token", tok), nil)
	is.Equal(status, http.StatusOK)
	is.Equal(ws.NextEvent(t, "read")["id"], direct)
	// The backend's key acts on any inbox, as Bearer or X-API-Key.
	status, _, _ = ts.do(t, http.MethodPut, "/api/v1/notifications/alice/read-all", nil, "Authorization", "Bearer "+secAPIKey)
	is.Equal(status, http.StatusOK)
	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/notifications/alice/"+direct, nil, "X-API-Key", secAPIKey)
	is.Equal(status, http.StatusNoContent)
}

// TestOpenModeWithAPIKeyEndToEnd: with only an API key, browsers stay in
// open mode (?user_id=) while the backend endpoints need the key.
func TestOpenModeWithAPIKeyEndToEnd(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(o *testConfig) {
		o.APIKey = secAPIKey
	})
	sse := ts.dialSSE(t, query("user_id", "u1", "channels", "anything"))
	sse.Ready(t)
	ws := ts.dialWS(t, query("user_id", "u1"))
	ws.Ready(t)
	ws.Send(t, map[string]any{"action": "subscribe", "channels": []string{"whatever"}}) // no claim to check
	ws.NextEvent(t, "subscribed")
	sse.NextEvent(t, "subscribed")

	status, body, hdr := ts.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"title": "x", "user_id": "u1"})
	apiWantError(t, status, body, hdr, http.StatusUnauthorized, "api_key_missing", "")
	id := secSend(t, ts, map[string]any{"title": "x", "user_id": "u1"})
	sse.NextNotification(t, id)
	ws.NextNotification(t, id)
	is.Equal(apiIDs(t, apiInbox(t, ts, "u1", "")), []string{id}) // the inbox is open, as in the seed
}

// TestTokenExpiryEndsLiveStreams: when a live stream's token expires, the
// stream ends with token_expired (SSE: an error event on a 200 stream;
// WebSocket: an error frame, then close 4001), so the client fetches a new
// token instead of reconnecting with the old one; other streams go on.
func TestTokenExpiryEndsLiveStreams(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, secured)
	// exp has whole-second precision: 2s ahead is at least 1s of life.
	short := secToken(t, "alice", nil, 2*time.Second)
	long := secToken(t, "alice", nil, time.Hour)
	start := time.Now()

	sse := ts.dialSSE(t, query("token", short))
	sse.Ready(t)
	ws := ts.dialWS(t, query("token", short))
	ws.Ready(t)
	lasting := ts.dialSSE(t, query("token", long))
	lasting.Ready(t)

	is.Equal(sse.NextEvent(t, "error")["code"], "token_expired")
	sse.Ended(t)
	is.Equal(sse.Resp.StatusCode, http.StatusOK)

	e := ws.NextEvent(t, "error")
	is.Equal(e["code"], "token_expired")
	is.Equal(ws.Closed(t), websocket.StatusCode(4001))
	is.True(time.Since(start) < 3*time.Second+waitTimeout)

	// The connections left the hub; the long-lived one still receives.
	streamtest.Eventually(t, "the expired streams to leave", func() bool { return ts.Hub.Len() == 1 })
	id := secSend(t, ts, map[string]any{"title": "still here", "user_id": "alice"})
	lasting.NextNotification(t, id)
	streamtest.Eventually(t, "both disconnects audited as token_expired", func() bool {
		return strings.Count(strings.Join(ts.disconnects(), ","), "token_expired") == 2
	})

	// Reconnecting with the expired token is refused, with the same code.
	status, body, hdr := ts.do(t, http.MethodGet, "/sse?"+query("token", short), nil)
	apiWantError(t, status, body, hdr, http.StatusUnauthorized, "token_expired", "")
}

// TestNoSecretInLogs: over a whole scenario (streams opened with ?token=,
// the cookie and the header, sends with the API key, forged, expired and
// wrong credentials, a token expiring on a live stream), no log line holds
// the JWT secret, a token or the API key.
func TestNoSecretInLogs(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, secured)
	tok := secToken(t, "alice", []string{"*"}, time.Hour)
	expired := secToken(t, "alice", nil, -time.Minute)
	forged := secSign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-01"), jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	const wrongKey = "wrong-api-key-0123456789"

	sse := ts.dialSSE(t, query("token", tok, "channels", "news"))
	sse.Ready(t)
	ts.dialSSE(t, "", "Cookie", secCookie+"="+tok).Ready(t)
	ts.dialSSE(t, "", "Authorization", "Bearer "+tok).Ready(t)
	ws := ts.dialWS(t, query("token", tok))
	ws.Ready(t)
	ws.Send(t, map[string]any{"action": "subscribe", "channels": []string{"orders.1"}})
	ws.NextEvent(t, "subscribed")
	sse.NextEvent(t, "subscribed")
	expiring := secToken(t, "alice", nil, 2*time.Second) // minted as late as possible: it must still be valid when dialled
	short := ts.dialWS(t, query("token", expiring))
	short.Ready(t)

	id := secSend(t, ts, map[string]any{"title": "hello", "user_id": "alice", "channels": []string{"news"}})
	sse.NextNotification(t, id)
	status, _, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"title": "x", "channels": []string{"news"}}, "X-API-Key", secAPIKey)
	is.Equal(status, http.StatusCreated)
	apiSchedule(t, ts, map[string]any{"title": "later", "user_id": "alice", "scheduled_at": apiAt(time.Now().Add(time.Hour))}, "X-API-Key", secAPIKey)
	status, _, _ = ts.do(t, http.MethodPut, "/api/v1/notifications/alice/"+id+"/read?"+query("token", tok), nil)
	is.Equal(status, http.StatusOK)

	for _, bad := range []string{expired, forged, tok + "x", expiring + "." + tok} {
		status, _, _ = ts.do(t, http.MethodGet, "/sse?"+query("token", bad), nil)
		is.Equal(status, http.StatusUnauthorized)
		status, _, _ = ts.do(t, http.MethodGet, "/api/v1/notifications/user/bob", nil, "Authorization", "Bearer "+bad)
		is.Equal(status, http.StatusUnauthorized)
	}
	status, _, _ = ts.do(t, http.MethodGet, "/api/v1/notifications/user/bob?"+query("token", tok), nil)
	is.Equal(status, http.StatusForbidden)
	for _, h := range [][]string{{"X-API-Key", wrongKey}, {"Authorization", "Bearer " + wrongKey}, {"Authorization", "Bearer " + tok}} {
		status, _, _ = ts.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"title": "x", "user_id": "bob"}, h...)
		is.True(status == http.StatusUnauthorized || status == http.StatusForbidden)
	}
	is.Equal(short.SkipTo(t, "error")["code"], "token_expired") // past alice's notification and read
	short.Closed(t)

	logs := ts.Logs.text()
	is.True(strings.Contains(logs, `"action":"denied"`)) // the refusals were logged...
	is.True(strings.Contains(logs, `"action":"connect"`))
	for name, secret := range map[string]string{
		"JWT secret": secSecret, "API key": secAPIKey, "wrong API key": wrongKey,
		"token": tok, "expiring token": expiring, "expired token": expired, "forged token": forged,
		"token signature": tok[strings.LastIndex(tok, ".")+1:],
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
	is.True(!strings.Contains(logs, "token=")) // ...and no query string with one
}
