package transport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"time"
)

// The browser client and its demo page are served from the files the
// binary embeds (Deps.Assets): GET /client.js is what a page imports, GET /
// the demo built on it; GET /openapi.yaml describes the HTTP API.

// handleAsset serves the file name of Deps.Assets. Browsers revalidate
// every time (no-cache) and get a 304 while the ETag matches: a new
// release's client reaches pages at once, an unchanged one costs a
// header. The file is read and hashed once, here; a missing one is a
// build mistake and panics at start-up.
func (s *Server) handleAsset(name, contentType string) http.Handler {
	body, err := fs.ReadFile(s.assets, name)
	if err != nil {
		panic("transport: embedded asset: " + err.Error())
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		// ServeContent answers If-None-Match (304), HEAD and ranges.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// handleOpenAPI serves docs/openapi.yaml, the description of every route,
// as YAML (RFC 9512's media type).
func (s *Server) handleOpenAPI() http.Handler {
	return s.handleAsset("docs/openapi.yaml", "application/yaml")
}

// dashboardPolicy keeps the dashboard's page to its own files and its own
// origin: it holds the API key (in sessionStorage), so no script but its
// own may run in it and no other site may frame it.
const dashboardPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// dashboardPage serves one of the dashboard's files under dashboardPolicy.
func dashboardPage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", dashboardPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}
