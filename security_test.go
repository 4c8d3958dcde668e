package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// Without JWT_SECRET and API_KEY the service starts, and says loudly what
// that leaves open.
func TestServeOpenModeWarns(t *testing.T) {
	svc := startService(t)
	svc.logs.waitRecord(t, "the open-mode warning", func(m map[string]any) bool {
		msg, _ := m["msg"].(string)
		return m["level"] == "WARN" && strings.Contains(msg, "open mode") && strings.Contains(msg, "anyone can read any user's stream and inbox")
	})
	svc.logs.waitRecord(t, "the API_KEY warning", func(m map[string]any) bool {
		msg, _ := m["msg"].(string)
		return m["level"] == "WARN" && strings.HasPrefix(msg, "API_KEY is not set")
	})
	// The seed's ?user_id= works.
	svc.openSSE(t, query("user_id", "u1")).Ready(t)
}

// TestServeTokenModeEndToEnd drives the real wiring in token mode: real
// SSE and WebSocket clients with a token, a send with the API key, the
// connection bound from MAX_CONNECTIONS_PER_USER, and not one secret in the
// logs.
func TestServeTokenModeEndToEnd(t *testing.T) {
	is := is.New(t)
	svc := startService(t, "JWT_SECRET", testJWTSecret, "API_KEY", testAPIKey, "MAX_CONNECTIONS_PER_USER", "2")
	claims := jwt.MapClaims{"sub": 42, "channels": []string{"orders.*"}, "exp": time.Now().Add(time.Hour).Unix()}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testJWTSecret))
	is.NoErr(err)

	sse := svc.openSSE(t, query("token", tok, "channels", "orders.eu"))
	is.Equal(sse.Ready(t)["user_id"], "42") // Laravel's integer key
	ws := svc.openWS(t, query("token", tok))
	is.Equal(ws.Ready(t)["user_id"], "42")
	// The third is refused; asking for an event stream, as EventSource
	// does, it is told so on a stream that ends, which EventSource retries
	// later.
	third := streamtest.DialSSE(t, svc.client, svc.url+"/sse?"+query("token", tok))
	is.Equal(third.Resp.StatusCode, http.StatusOK)
	is.Equal(third.NextEvent(t, "error")["code"], "too_many_connections")
	third.Ended(t)

	status, _ := svc.request(t, http.MethodPost, "/api/v1/notifications/send", `{"title":"x","user_id":42}`)
	is.Equal(status, http.StatusUnauthorized) // the key is required
	status, body := svc.request(t, http.MethodPost, "/api/v1/notifications/send", `{"title":"x","user_id":42}`,
		"Authorization", "Bearer "+testAPIKey)
	is.Equal(status, http.StatusCreated)
	sse.NextNotification(t, body["id"].(string))
	ws.NextNotification(t, body["id"].(string))
	status, _ = svc.request(t, http.MethodGet, "/api/v1/notifications/user/42?"+query("token", tok), "")
	is.Equal(status, http.StatusOK)
	status, _ = svc.request(t, http.MethodGet, "/api/v1/notifications/user/43?"+query("token", tok), "")
	is.Equal(status, http.StatusForbidden)

	svc.stop()
	is.NoErr(svc.wait(t))
	logs := svc.logs.String()
	is.True(!strings.Contains(logs, "open mode"))
	for name, secret := range map[string]string{"JWT secret": testJWTSecret, "API key": testAPIKey, "token": tok} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
}

// request sends body (none when empty) with the header, value pairs given
// and decodes the JSON answer.
func (s *service) request(t *testing.T, method, path, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	var payload any
	if body != "" {
		payload = json.RawMessage(body)
	}
	status, m, err := s.tryJSON(method, path, payload, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return status, m
}
