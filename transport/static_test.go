package transport_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/matryer/is"

	"notification-service/audit"
	"notification-service/broker"
	"notification-service/inbox"
	"notification-service/transport"
)

// newAssetServer serves the routes over assets (nil: none), with the
// least else the transport needs to build them.
func newAssetServer(t *testing.T, assets fstest.MapFS) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := broker.NewHub(100)
	store := inbox.NewMemory(inbox.Limits{MaxPerUser: 10, MaxAge: time.Hour})
	bus := broker.NewMemory(hub, store, broker.HistoryLimits{MaxPerChannel: 10, MaxAge: time.Hour}, nil)
	d := transport.Deps{Hub: hub, Bus: bus, Inbox: store, Audit: audit.New(logger), Logger: logger}
	if assets != nil {
		d.Assets = assets
	}
	srv := httptest.NewServer(transport.New(d, defaultOptions()).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func TestAssets(t *testing.T) {
	assets := fstest.MapFS{
		"clients/js/client.js":   {Data: []byte("export function connect() {}\n")},
		"clients/js/client.d.ts": {Data: []byte("export declare function connect(): void;\n")},
		"web/index.html":         {Data: []byte("<!doctype html><title>demo</title>\n")},
		"web/dashboard.html":     {Data: []byte("<!doctype html><title>dashboard</title>\n")},
		"web/dashboard.js":       {Data: []byte("poll();\n")},
		"web/dashboard.css":      {Data: []byte("body{}\n")},
		"docs/openapi.yaml":      {Data: []byte("openapi: 3.1.1\n")},
	}
	srv := newAssetServer(t, assets)

	for _, tc := range []struct {
		path, contentType, body string
	}{
		{"/client.js", "text/javascript; charset=utf-8", "export function connect() {}\n"},
		{"/client.d.ts", "application/typescript; charset=utf-8", "export declare function connect(): void;\n"},
		{"/", "text/html; charset=utf-8", "<!doctype html><title>demo</title>\n"},
		{"/dashboard", "text/html; charset=utf-8", "<!doctype html><title>dashboard</title>\n"},
		{"/dashboard.js", "text/javascript; charset=utf-8", "poll();\n"},
		{"/dashboard.css", "text/css; charset=utf-8", "body{}\n"},
		{"/openapi.yaml", "application/yaml", "openapi: 3.1.1\n"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			is := is.New(t)
			res, body := get(t, srv.URL+tc.path, nil)
			is.Equal(res.StatusCode, http.StatusOK)
			is.Equal(res.Header.Get("Content-Type"), tc.contentType)
			is.Equal(res.Header.Get("Cache-Control"), "no-cache")
			is.Equal(body, tc.body)
			etag := res.Header.Get("ETag")
			is.True(etag != "")

			// A page revalidating with the ETag gets 304 and no body.
			res, body = get(t, srv.URL+tc.path, http.Header{"If-None-Match": {etag}})
			is.Equal(res.StatusCode, http.StatusNotModified)
			is.Equal(body, "")
		})
	}

	t.Run("the dashboard runs only its own scripts and is never framed", func(t *testing.T) {
		is := is.New(t)
		for _, path := range []string{"/dashboard", "/dashboard.js", "/dashboard.css"} {
			res, _ := get(t, srv.URL+path, http.Header{"Origin": {"https://app.example"}})
			csp := res.Header.Get("Content-Security-Policy")
			is.True(strings.Contains(csp, "script-src 'self'"))
			is.True(strings.Contains(csp, "frame-ancestors 'none'"))
			is.True(!strings.Contains(csp, "unsafe"))
			is.Equal(res.Header.Get("X-Frame-Options"), "DENY")
			is.Equal(res.Header.Get("Access-Control-Allow-Origin"), "") // same origin only
		}
	})

	t.Run("module import from another origin", func(t *testing.T) {
		is := is.New(t)
		// A module script is fetched in CORS mode: another site's page
		// can import the client only with this header.
		res, _ := get(t, srv.URL+"/client.js", http.Header{"Origin": {"https://app.example"}})
		is.Equal(res.StatusCode, http.StatusOK)
		is.Equal(res.Header.Get("Access-Control-Allow-Origin"), "*")
	})

	t.Run("only the exact path / is the demo", func(t *testing.T) {
		is := is.New(t)
		res, body := get(t, srv.URL+"/index.html", nil)
		is.Equal(res.StatusCode, http.StatusNotFound)
		is.Equal(res.Header.Get("Content-Type"), "application/json")
		is.True(body != "")
		res, _ = get(t, srv.URL+"/web/index.html", nil)
		is.Equal(res.StatusCode, http.StatusNotFound)
	})

	t.Run("no assets, no routes", func(t *testing.T) {
		is := is.New(t)
		bare := newAssetServer(t, nil)
		for _, path := range []string{"/", "/client.js", "/client.d.ts", "/openapi.yaml", "/dashboard"} {
			res, _ := get(t, bare.URL+path, nil)
			is.Equal(res.StatusCode, http.StatusNotFound)
		}
	})
}
