package transport_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
	"notification-service/transport"
)

// secDialWS attempts a WebSocket handshake with the headers given and
// returns the connection, or the refusal's status and error code.
func secDialWS(t *testing.T, ts *testServer, q string, header http.Header) (c *websocket.Conn, status int, code string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, ts.wsURL(q), &websocket.DialOptions{HTTPHeader: header})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		return c, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	// coder/websocket keeps the first bytes of a refused handshake's body.
	var body strings.Builder
	if resp.Body != nil {
		buf := make([]byte, 1024)
		n, _ := resp.Body.Read(buf)
		body.Write(buf[:n])
	}
	if i := strings.Index(body.String(), `"code":"`); i >= 0 {
		code, _, _ = strings.Cut(body.String()[i+len(`"code":"`):], `"`)
	}
	return nil, resp.StatusCode, code
}

// secAttackTokens are the forged and otherwise unacceptable tokens of the
// attack table, each with the error it must get.
func secAttackTokens(t *testing.T) []struct{ name, token, code string } {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "channels": []string{"*"}}
	}
	good := secToken(t, "alice", []string{"*"}, time.Hour)
	parts := strings.Split(good, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return []struct{ name, token, code string }{
		{"forged signature (another secret)", secSign(t, jwt.SigningMethodHS256, []byte(secSecret+"-not"), claims()), "token_invalid"},
		{"alg none", secSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims()), "token_invalid"},
		{"alg none over a real token's claims", none + "." + parts[1] + ".", "token_invalid"},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "token_invalid"},
		{"claims swapped under a real signature", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"bob","exp":9999999999,"channels":["*"]}`)) + "." + parts[2], "token_invalid"},
		{"RS256", secSign(t, jwt.SigningMethodRS256, rsaKey, claims()), "token_invalid"},
		{"HS256 keyed with an RSA public key", secSign(t, jwt.SigningMethodHS256, pubPEM, claims()), "token_invalid"},
		{"HS512 with the right secret", secSign(t, jwt.SigningMethodHS512, []byte(secSecret), claims()), "token_invalid"},
		{"expired", secToken(t, "alice", []string{"*"}, -time.Minute), "token_expired"},
		{"no exp", secSign(t, jwt.SigningMethodHS256, []byte(secSecret), jwt.MapClaims{"sub": "alice"}), "token_invalid"},
		{"sub outside the id alphabet", secToken(t, "alice/../bob", nil, time.Hour), "token_invalid"},
		{"garbage", "not.a.token", "token_invalid"},
	}
}

// TestAttackTokens: no stream opens with a token the service did not sign
// with HS256, or one that has expired, on either transport.
func TestAttackTokens(t *testing.T) {
	ts := newTestServer(t, secured)
	for _, tc := range secAttackTokens(t) {
		t.Run(tc.name, func(t *testing.T) {
			for _, where := range []struct {
				name    string
				q       string
				headers []string
			}{
				{"query", query("token", tc.token), nil},
				{"bearer", "", []string{"Authorization", "Bearer " + tc.token}},
				{"cookie", "", []string{"Cookie", secCookie + "=" + tc.token}},
			} {
				status, body, hdr := ts.do(t, http.MethodGet, "/sse?"+where.q, nil, where.headers...)
				apiWantError(t, status, body, hdr, http.StatusUnauthorized, tc.code, "")
				if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: 401 without WWW-Authenticate: Bearer", where.name)
				}
			}
			_, status, code := secDialWS(t, ts, query("token", tc.token), nil)
			if status != http.StatusUnauthorized || code != tc.code {
				t.Errorf("/ws: %d %s, want 401 %s", status, code, tc.code)
			}
			// The inbox refuses the same tokens.
			status, body, hdr := ts.do(t, http.MethodGet, "/api/v1/notifications/user/alice", nil, "Authorization", "Bearer "+tc.token)
			apiWantError(t, status, body, hdr, http.StatusUnauthorized, tc.code, "")
			if n := ts.Hub.Len(); n != 0 {
				t.Fatalf("%d connections registered", n)
			}
		})
	}
}

// TestAttackTable: each row is an attack by a browser holding alice's
// token, or by someone without the API key, and the answer that proves it
// failed.
func TestAttackTable(t *testing.T) {
	ts := newTestServer(t, secured)
	alice := secToken(t, "alice", []string{"orders.*", "news"}, time.Hour)
	bobsID := secSend(t, ts, map[string]any{"title": "for bob", "user_id": "bob"})
	sched := apiSchedule(t, ts, map[string]any{"title": "later", "user_id": "bob", "scheduled_at": apiAt(time.Now().Add(time.Hour))},
		"X-API-Key", secAPIKey)
	schedID := sched["id"].(string)
	send := map[string]any{"title": "spoofed", "user_id": "bob"}
	scheduled := map[string]any{"title": "spoofed", "user_id": "bob", "scheduled_at": apiAt(time.Now().Add(time.Hour))}
	channels := map[string]any{"channels": []string{"x"}}
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		headers      []string
		status       int
		code         string
	}{
		// A user's token opens its own inbox and stream only.
		{"token for alice lists bob's inbox", http.MethodGet, "/api/v1/notifications/user/bob", nil, bearer(alice), 403, "forbidden_user"},
		{"token for alice lists bob's inbox (?token=)", http.MethodGet, "/api/v1/notifications/user/bob?" + query("token", alice), nil, nil, 403, "forbidden_user"},
		{"token for alice lists bob's inbox (cookie)", http.MethodGet, "/api/v1/notifications/user/bob", nil, []string{"Cookie", secCookie + "=" + alice}, 403, "forbidden_user"},
		{"token for alice marks bob's notification read", http.MethodPut, "/api/v1/notifications/bob/" + bobsID + "/read", nil, bearer(alice), 403, "forbidden_user"},
		{"token for alice marks all bob's read", http.MethodPut, "/api/v1/notifications/bob/read-all", nil, bearer(alice), 403, "forbidden_user"},
		{"token for alice deletes bob's notification", http.MethodDelete, "/api/v1/notifications/bob/" + bobsID, nil, bearer(alice), 403, "forbidden_user"},
		{"no credential on an inbox", http.MethodGet, "/api/v1/notifications/user/bob", nil, nil, 401, "token_missing"},
		{"wrong API key on an inbox", http.MethodGet, "/api/v1/notifications/user/bob", nil, []string{"X-API-Key", "guess"}, 401, "api_key_invalid"},
		{"token for alice opens bob's stream", http.MethodGet, "/sse?" + query("token", alice, "user_id", "bob"), nil, nil, 403, "forbidden_user"},
		{"stream without a token", http.MethodGet, "/sse?" + query("user_id", "bob"), nil, nil, 401, "token_missing"},
		{"API key opens a stream", http.MethodGet, "/sse?" + query("user_id", "bob"), nil, bearer(secAPIKey), 401, "token_invalid"},
		{"channel outside the claim in the SSE URL", http.MethodGet, "/sse?" + query("token", alice, "channels", "orders.1,billing"), nil, nil, 403, "forbidden_channel"},
		{"channel outside the claim in the WS URL", http.MethodGet, "/ws?" + query("token", alice, "channels", "billing"), nil, nil, 403, "forbidden_channel"},
		// The backend endpoints need the API key.
		{"send without API key", http.MethodPost, "/api/v1/notifications/send", send, nil, 401, "api_key_missing"},
		{"send with a wrong bearer key", http.MethodPost, "/api/v1/notifications/send", send, bearer("wrong-key"), 401, "api_key_invalid"},
		{"send with a wrong X-API-Key", http.MethodPost, "/api/v1/notifications/send", send, []string{"X-API-Key", secAPIKey + "x"}, 401, "api_key_invalid"},
		{"send with the key's prefix", http.MethodPost, "/api/v1/notifications/send", send, []string{"X-API-Key", secAPIKey[:len(secAPIKey)-1]}, 401, "api_key_invalid"},
		{"send with a user's token", http.MethodPost, "/api/v1/notifications/send", send, bearer(alice), 403, "forbidden"},
		{"send with the key in the query", http.MethodPost, "/api/v1/notifications/send?" + query("api_key", secAPIKey, "token", secAPIKey), send, nil, 401, "api_key_missing"},
		{"schedule without API key", http.MethodPost, "/api/v1/notifications/schedule", scheduled, nil, 401, "api_key_missing"},
		{"list schedules without API key", http.MethodGet, "/api/v1/schedules?user_id=bob", nil, nil, 401, "api_key_missing"},
		{"read a schedule with a user's token", http.MethodGet, "/api/v1/schedules/" + schedID, nil, bearer(alice), 403, "forbidden"},
		{"cancel a schedule without API key", http.MethodDelete, "/api/v1/schedules/" + schedID, nil, nil, 401, "api_key_missing"},
		// A connection's channels: the API key, or the token of the user
		// whose connection it is (connections_owner_test.go).
		{"subscribe without the API key or a token", http.MethodPost, "/api/v1/connections/c1/subscribe", channels, nil, 401, "token_missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := ts.do(t, tc.method, tc.path, tc.body, tc.headers...)
			field := ""
			if tc.code == "forbidden_channel" {
				field = "channels"
			}
			apiWantError(t, status, body, hdr, tc.status, tc.code, field)
		})
	}

	// Nothing the attacks tried happened.
	is := is.New(t)
	status, body, _ := ts.do(t, http.MethodGet, "/api/v1/notifications/user/bob", nil, "X-API-Key", secAPIKey)
	is.Equal(status, http.StatusOK)
	is.Equal(apiIDs(t, body), []string{bobsID}) // nothing sent, nothing deleted
	is.Equal(body["unread"], float64(1))        // nothing marked read
	status, _, _ = ts.do(t, http.MethodGet, "/api/v1/schedules/"+schedID, nil, "Authorization", "Bearer "+secAPIKey)
	is.Equal(status, http.StatusOK) // not cancelled
	is.Equal(ts.Hub.Len(), 0)
	is.True(len(ts.Logs.Records("denied")) > 0) // refusals are audited
}

// TestAttackWSSubscribeOutsideClaim: a subscribe frame naming a channel the
// token does not allow gets an error frame and subscribes nothing, not even
// the allowed channels beside it.
func TestAttackWSSubscribeOutsideClaim(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, secured)
	ws := ts.dialWS(t, query("token", secToken(t, "alice", []string{"orders.*"}, time.Hour)))
	ready := ws.Ready(t)
	is.Equal(ready["user_id"], "alice")
	connID := ready["connection_id"].(string)

	ws.Send(t, map[string]any{"action": "subscribe", "channels": []string{"orders.1", "billing"}})
	e := ws.NextEvent(t, "error")
	is.Equal(e["code"], "forbidden_channel")
	sub, ok := ts.Hub.Connection(connID)
	is.True(ok)
	is.Equal(len(sub.Channels), 0)

	ws.Send(t, map[string]any{"action": "subscribe", "channels": []string{"orders.1"}})
	is.Equal(apiStrings(ws.NextEvent(t, "subscribed")["channels"]), []string{"orders.1"})
	secSend(t, ts, map[string]any{"title": "not yours", "channels": []string{"billing"}})
	mine := secSend(t, ts, map[string]any{"title": "yours", "channels": []string{"orders.1"}})
	ws.NextNotification(t, mine) // billing never arrived first
}

// TestAttackTooManyConnections: one user cannot hold more streams than
// MAX_CONNECTIONS_PER_USER, on either transport, and simultaneous
// connects cannot slip past the bound together.
func TestAttackTooManyConnections(t *testing.T) {
	limited := func(o *testConfig) {
		secured(o)
		o.MaxConnectionsPerUser = 2
	}
	t.Run("sequential", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t, limited)
		tok := secToken(t, "alice", nil, time.Hour)
		first := ts.dialSSE(t, query("token", tok))
		first.Ready(t)
		ws := ts.dialWS(t, query("token", tok))
		ws.Ready(t)

		status, body, hdr := ts.do(t, http.MethodGet, "/sse?"+query("token", tok), nil)
		apiWantError(t, status, body, hdr, http.StatusTooManyRequests, "too_many_connections", "")
		_, status, code := secDialWS(t, ts, query("token", tok), nil)
		is.Equal(status, http.StatusTooManyRequests)
		is.Equal(code, "too_many_connections")
		// Another user is not affected.
		ts.dialSSE(t, query("token", secToken(t, "bob", nil, time.Hour))).Ready(t)

		// A closed stream gives its slot back.
		first.Close()
		streamtest.Eventually(t, "the slot to be given back", func() bool {
			c := ts.dialSSE(t, query("token", tok))
			if c.Resp.StatusCode == http.StatusOK {
				return true
			}
			c.Close()
			return false
		})
	})
	t.Run("simultaneous", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t, limited)
		tok := secToken(t, "alice", nil, time.Hour)
		const attempts = 12
		begin := make(chan struct{})
		statuses := make(chan int, attempts)
		var bodies sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		defer func() { cancel(); bodies.Wait() }()
		for range attempts {
			bodies.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/sse?"+query("token", tok), nil)
				<-begin
				resp, err := ts.Client().Do(req)
				if err != nil {
					statuses <- 0
					return
				}
				statuses <- resp.StatusCode
				<-ctx.Done() // hold an accepted stream open until counted
				resp.Body.Close()
			})
		}
		close(begin)
		counts := map[int]int{}
		for range attempts {
			counts[<-statuses]++
		}
		is.Equal(counts[http.StatusOK], 2)
		is.Equal(counts[http.StatusTooManyRequests], attempts-2)
	})
}

// wantDenied checks that the audit holds one denied record per refusal
// given, in order, each rate_limited and naming by key what met the rate.
func wantDenied(t *testing.T, ts *testServer, key string, values ...string) {
	t.Helper()
	denied := ts.Logs.Records("denied")
	got := make([]string, len(denied))
	for i, d := range denied {
		if d["code"] != "rate_limited" {
			t.Errorf("denied %v: code %v, want rate_limited", d, d["code"])
		}
		got[i] = fmt.Sprint(d[key])
	}
	if fmt.Sprint(got) != fmt.Sprint(values) {
		t.Fatalf("denied records' %s: %v, want %v", key, got, values)
	}
}

// TestAttackRateLimits: past a rate, connects and sends get 429 with a
// Retry-After of whole seconds, per client address and per user, each
// audited as denied.
func TestAttackRateLimits(t *testing.T) {
	slow := transport.Rate{PerSecond: 0.5, Burst: 2}
	wantLimited := func(t *testing.T, status int, body map[string]any, hdr http.Header) {
		t.Helper()
		apiWantError(t, status, body, hdr, http.StatusTooManyRequests, "rate_limited", "")
		secs, err := strconv.Atoi(hdr.Get("Retry-After"))
		if err != nil || secs < 1 {
			t.Fatalf("Retry-After %q, want whole seconds >= 1", hdr.Get("Retry-After"))
		}
	}
	t.Run("connects per address", func(t *testing.T) {
		ts := newTestServer(t, func(o *testConfig) {
			o.Rates.ConnectsPerAddr = slow
		})
		ts.dialSSE(t, query("user_id", "a")).Ready(t)
		ts.dialWS(t, query("user_id", "b")).NextEvent(t, "ready")
		status, body, hdr := ts.do(t, http.MethodGet, "/sse?"+query("user_id", "c"), nil)
		wantLimited(t, status, body, hdr)
		_, status, code := secDialWS(t, ts, query("user_id", "d"), nil)
		if status != http.StatusTooManyRequests || code != "rate_limited" {
			t.Fatalf("/ws: %d %s", status, code)
		}
		wantDenied(t, ts, "path", "/sse", "/ws")
	})
	t.Run("connects per user", func(t *testing.T) {
		ts := newTestServer(t, func(o *testConfig) {
			secured(o)
			o.Rates.ConnectsPerUser = slow
		})
		tok := secToken(t, "alice", nil, time.Hour)
		ts.dialSSE(t, query("token", tok)).Ready(t)
		ts.dialSSE(t, query("token", tok)).Ready(t)
		status, body, hdr := ts.do(t, http.MethodGet, "/sse?"+query("token", tok), nil)
		wantLimited(t, status, body, hdr)
		ts.dialSSE(t, query("token", secToken(t, "bob", nil, time.Hour))).Ready(t) // bob has his own
		wantDenied(t, ts, "user_id", "alice")
	})
	t.Run("sends per address", func(t *testing.T) {
		ts := newTestServer(t, func(o *testConfig) {
			o.Rates.SendsPerAddr = slow
		})
		ts.send(t, map[string]any{"title": "1", "user_id": "a"})
		apiSchedule(t, ts, map[string]any{"title": "2", "user_id": "b", "scheduled_at": apiAt(time.Now().Add(time.Hour))})
		status, body, hdr := ts.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"title": "3", "user_id": "c"})
		wantLimited(t, status, body, hdr)
		status, body, hdr = ts.do(t, http.MethodPost, "/api/v1/notifications/schedule",
			map[string]any{"title": "4", "user_id": "d", "scheduled_at": apiAt(time.Now().Add(time.Hour))})
		wantLimited(t, status, body, hdr)
		is.New(t).Equal(apiInbox(t, ts, "c", "")["total"], float64(0)) // refused means not sent
		wantDenied(t, ts, "path", "/api/v1/notifications/send", "/api/v1/notifications/schedule")
	})
	t.Run("sends per addressed user", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t, func(o *testConfig) {
			o.Rates.SendsPerUser = slow
		})
		ts.send(t, map[string]any{"title": "1", "user_id": "alice"})
		ts.send(t, map[string]any{"title": "2", "user_id": "alice"})
		status, body, hdr := ts.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"title": "3", "user_id": "alice"})
		wantLimited(t, status, body, hdr)
		// A batch including alice is refused whole, and spends nobody's
		// allowance: bob still has both of his.
		status, body, hdr = ts.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"title": "4", "user_ids": []string{"bob", "alice"}})
		wantLimited(t, status, body, hdr)
		ts.send(t, map[string]any{"title": "5", "user_id": "bob"})
		ts.send(t, map[string]any{"title": "6", "user_id": "bob"})
		is.Equal(apiInbox(t, ts, "alice", "")["total"], float64(2))
		is.Equal(apiInbox(t, ts, "bob", "")["total"], float64(2))
		// Broadcasts address no user.
		ts.send(t, map[string]any{"title": "7", "channels": []string{"news"}})
		wantDenied(t, ts, "user_ids", "[alice]", "[bob alice]")
	})
	t.Run("forwarded-for only when trusted", func(t *testing.T) {
		for _, trust := range []bool{false, true} {
			ts := newTestServer(t, func(o *testConfig) {
				o.Rates.SendsPerAddr = transport.Rate{PerSecond: 0.5, Burst: 1}
				o.TrustForwardedFor = trust
			})
			sendFrom := func(addr string) int {
				status, _, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"title": "x", "user_id": "u"},
					"X-Forwarded-For", addr+", 10.0.0.1")
				return status
			}
			is := is.New(t)
			is.Equal(sendFrom("192.0.2.1"), http.StatusCreated)
			if trust {
				is.Equal(sendFrom("192.0.2.2"), http.StatusCreated) // another client behind the proxy
				is.Equal(sendFrom("192.0.2.1"), http.StatusTooManyRequests)
				wantDenied(t, ts, "client_addr", "192.0.2.1") // the address the rate is kept for
			} else {
				is.Equal(sendFrom("192.0.2.2"), http.StatusTooManyRequests) // the header is the client's to forge
				wantDenied(t, ts, "client_addr", "127.0.0.1")
			}
		}
	})
}

// TestAttackCookieFromForeignOrigin: a browser attaches the cookie to a
// WebSocket any site opens, and CORS does not guard an upgrade, so the
// cookie counts only from an origin named in ALLOWED_ORIGINS (or the
// service's own), never through "*".
func TestAttackCookieFromForeignOrigin(t *testing.T) {
	tok := secToken(t, "alice", nil, time.Hour)
	cookie := http.Header{"Cookie": {secCookie + "=" + tok}}
	withOrigin := func(origin string) http.Header {
		h := cookie.Clone()
		h.Set("Origin", origin)
		return h
	}
	t.Run("any origin", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t, secured) // ALLOWED_ORIGINS=*
		_, status, code := secDialWS(t, ts, "", withOrigin("https://evil.example"))
		is.Equal(status, http.StatusUnauthorized)
		is.Equal(code, "token_missing")
		// The token in the URL is the page's own doing, not ambient.
		c, status, _ := secDialWS(t, ts, query("token", tok), http.Header{"Origin": {"https://evil.example"}})
		is.Equal(status, http.StatusSwitchingProtocols)
		c.CloseNow()
		// Same origin and no Origin (not a page) may use the cookie.
		u, _ := url.Parse(ts.URL)
		c, status, _ = secDialWS(t, ts, "", withOrigin("http://"+u.Host))
		is.Equal(status, http.StatusSwitchingProtocols)
		c.CloseNow()
		c, status, _ = secDialWS(t, ts, "", cookie)
		is.Equal(status, http.StatusSwitchingProtocols)
		c.CloseNow()
	})
	t.Run("listed origins", func(t *testing.T) {
		is := is.New(t)
		ts := newTestServer(t, secured, func(o *testConfig) {
			o.AllowedOrigins = []string{"https://app.example"}
		})
		c, status, _ := secDialWS(t, ts, "", withOrigin("https://app.example"))
		is.Equal(status, http.StatusSwitchingProtocols)
		c.CloseNow()
		_, status, code := secDialWS(t, ts, "", withOrigin("https://evil.example"))
		is.Equal(status, http.StatusUnauthorized) // no credential from that origin...
		is.Equal(code, "token_missing")
		_, status, code = secDialWS(t, ts, query("token", tok), http.Header{"Origin": {"https://evil.example"}})
		is.Equal(status, http.StatusForbidden) // ...and the origin itself is refused
		is.Equal(code, "origin_not_allowed")
	})
}

// TestAuthCORSPreflight: a page on an allowed origin may call the inbox
// with its token in Authorization and reconnect SSE with Last-Event-ID;
// credentials are allowed for a listed origin only, never with "*".
func TestAuthCORSPreflight(t *testing.T) {
	preflight := func(t *testing.T, ts *testServer, method, path string) (int, http.Header) {
		status, _, hdr := ts.do(t, http.MethodOptions, path, nil, "Origin", "https://app.example",
			"Access-Control-Request-Method", method, "Access-Control-Request-Headers", "authorization, last-event-id")
		return status, hdr
	}
	for _, origins := range [][]string{{"https://app.example"}, {"*"}} {
		t.Run(origins[0], func(t *testing.T) {
			ts := newTestServer(t, secured, func(o *testConfig) {
				o.AllowedOrigins = origins
			})
			for _, r := range []struct{ method, path string }{
				{http.MethodGet, "/api/v1/notifications/user/alice"},
				{http.MethodPut, "/api/v1/notifications/alice/read-all"},
				{http.MethodPut, "/api/v1/notifications/alice/n1/read"},
				{http.MethodDelete, "/api/v1/notifications/alice/n1"},
				{http.MethodGet, "/sse"},
			} {
				is := is.New(t)
				status, hdr := preflight(t, ts, r.method, r.path)
				is.Equal(status, http.StatusNoContent) // the preflight needs no token
				allowed := strings.ToLower(hdr.Get("Access-Control-Allow-Headers"))
				is.True(strings.Contains(allowed, "authorization"))
				is.True(strings.Contains(allowed, "last-event-id"))
				is.True(strings.Contains(hdr.Get("Access-Control-Allow-Methods"), r.method))
				if origins[0] == "*" {
					is.Equal(hdr.Get("Access-Control-Allow-Origin"), "*")
					is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "")
				} else {
					is.Equal(hdr.Get("Access-Control-Allow-Origin"), "https://app.example")
					is.Equal(hdr.Get("Access-Control-Allow-Credentials"), "true")
				}
			}
			// The request itself carries the token and gets CORS headers.
			status, _, hdr := ts.do(t, http.MethodGet, "/api/v1/notifications/user/alice", nil,
				"Origin", "https://app.example", "Authorization", "Bearer "+secToken(t, "alice", nil, time.Hour))
			is := is.New(t)
			is.Equal(status, http.StatusOK)
			is.True(hdr.Get("Access-Control-Allow-Origin") != "")
		})
	}
}
