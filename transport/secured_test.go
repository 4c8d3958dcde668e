package transport_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A token-mode test server (JWT secret, API key, auth cookie) and what tests
// do with it: mint tokens, send with the key. attack_test.go attacks it;
// auth_e2e_test.go uses it as a browser and a backend would.

// The secrets of a token-mode test server. Tests assert they never reach a
// log line.
const (
	secSecret = "attack-test-secret-0123456789abcdef-0123"
	secAPIKey = "attack-test-api-key-0123456789"
	secCookie = "notif_token"
)

// secured turns token mode on, with an API key.
func secured(o *testConfig) {
	o.JWTSecret = []byte(secSecret)
	o.APIKey = secAPIKey
	o.AuthCookie = secCookie
}

// secToken mints a token as the backend would: HS256 with the shared
// secret. channels nil leaves the claim out.
func secToken(t testing.TB, sub string, channels []string, ttl time.Duration) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(ttl).Unix()}
	if channels != nil {
		claims["channels"] = channels
	}
	return secSign(t, jwt.SigningMethodHS256, []byte(secSecret), claims)
}

func secSign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// secSend sends with the API key and returns the notification's id.
func secSend(t *testing.T, ts *testServer, body map[string]any) string {
	t.Helper()
	status, resp, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/send", body, "Authorization", "Bearer "+secAPIKey)
	if status != http.StatusCreated {
		t.Fatalf("send: status %d: %v", status, resp)
	}
	return resp["id"].(string)
}
