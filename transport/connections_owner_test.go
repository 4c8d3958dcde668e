package transport_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/matryer/is"
)

// A browser changes its own connection's channels (an SSE client cannot
// talk back on its stream): with its token in token mode, within the
// token's channels; with ?user_id= in open mode. Another user's connection
// is 403 and audited; the backend's API key opens any connection.

func TestConnectionChannelsWithAUserToken(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, secured)
	alice := secToken(t, "alice", []string{"orders.*"}, time.Hour)
	bob := secToken(t, "bob", []string{"*"}, time.Hour)
	conn := ts.dialSSE(t, query("token", alice)).Ready(t)["connection_id"].(string)
	subscribe := "/api/v1/connections/" + conn + "/subscribe"

	status, sub, _ := ts.do(t, http.MethodPost, subscribe, `{"channels":["orders.eu"]}`, "Authorization", "Bearer "+alice)
	is.Equal(status, http.StatusOK)
	is.Equal(sub["channels"], []any{"orders.eu"})

	status, resp, hdr := ts.do(t, http.MethodPost, subscribe, `{"channels":["payroll"]}`, "Authorization", "Bearer "+alice)
	apiWantError(t, status, resp, hdr, http.StatusForbidden, "forbidden_channel", "channels")

	status, resp, hdr = ts.do(t, http.MethodPost, subscribe, `{"channels":["orders.us"]}`, "Authorization", "Bearer "+bob)
	apiWantError(t, status, resp, hdr, http.StatusForbidden, "forbidden_connection", "")

	status, resp, hdr = ts.do(t, http.MethodPost, subscribe, `{"channels":["orders.us"]}`)
	apiWantError(t, status, resp, hdr, http.StatusUnauthorized, "token_missing", "")

	// The backend may change any connection's channels, outside any claim.
	status, sub, _ = ts.do(t, http.MethodPost, subscribe, `{"channels":["payroll"]}`, "X-API-Key", secAPIKey)
	is.Equal(status, http.StatusOK)
	is.Equal(sub["channels"], []any{"orders.eu", "payroll"})

	denied := ts.Logs.Records("denied")
	codes := map[any]int{}
	for _, d := range denied {
		codes[d["code"]]++
	}
	is.Equal(codes["forbidden_channel"], 1)
	is.Equal(codes["forbidden_connection"], 1)
}

func TestConnectionChannelsInOpenMode(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(c *testConfig) { c.APIKey = secAPIKey })
	conn := ts.dialSSE(t, query("user_id", "alice")).Ready(t)["connection_id"].(string)
	subscribe := "/api/v1/connections/" + conn + "/subscribe"

	status, _, _ := ts.do(t, http.MethodPost, subscribe+"?user_id=alice", `{"channels":["news"]}`)
	is.Equal(status, http.StatusOK)
	status, resp, hdr := ts.do(t, http.MethodPost, subscribe+"?user_id=bob", `{"channels":["news"]}`)
	apiWantError(t, status, resp, hdr, http.StatusForbidden, "forbidden_connection", "")
	status, resp, hdr = ts.do(t, http.MethodPost, subscribe, `{"channels":["news"]}`)
	apiWantError(t, status, resp, hdr, http.StatusUnauthorized, "api_key_missing", "")
	status, _, _ = ts.do(t, http.MethodPost, subscribe, `{"channels":["deals"]}`, "X-API-Key", secAPIKey)
	is.Equal(status, http.StatusOK)
}
