package transport

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// jsonMuxErrors answers the mux's own 404 and 405 with the API's JSON error
// shape instead of its plain text.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		// Every path answers OPTIONS (browsers' preflights): a path with
		// nothing else is not there.
		allow := rec.header.Get("Allow")
		if rec.status == http.StatusMethodNotAllowed && allow != "OPTIONS" {
			w.Header().Set("Allow", allow)
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " is not allowed here"})
			return
		}
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.URL.Path})
	})
}

// statusRecorder captures what the mux would answer for an unmatched route.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }

// browserRoutes returns how Handler registers a route a page calls from
// its origin: with cors. One OPTIONS route answers the browsers' preflights
// for those routes, and only those: a page may not even send a request to
// the backend's endpoints.
func (s *Server) browserRoutes(mux *http.ServeMux) func(pattern string, h http.Handler) {
	browser := make(map[string]bool)
	mux.Handle("OPTIONS /", s.cors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// cors answered a preflight for a browser route already; what is
		// left is another path, or an OPTIONS that is no preflight.
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "no cross-origin access to " + r.URL.Path})
	}), func(r *http.Request) bool {
		asked := r.Clone(r.Context())
		asked.Method = r.Header.Get("Access-Control-Request-Method")
		_, pattern := mux.Handler(asked)
		return browser[pattern]
	}))
	return func(pattern string, h http.Handler) {
		browser[pattern] = true
		mux.Handle(pattern, s.cors(h, nil))
	}
}

// cors lets browsers on allowed origins call a browser-facing endpoint,
// preflight included (an EventSource reconnecting cross-origin with
// Last-Event-ID is preflighted): for preflights, when preflightable says
// so (nil: always). A refused preflight is audited as denied.
func (s *Server) cors(next http.Handler, preflightable func(*http.Request) bool) http.Handler {
	anyOrigin := slices.Contains(s.opts.AllowedOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		isPreflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if origin == "" || (isPreflight && preflightable != nil && !preflightable(r)) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		if !anyOrigin && !s.originAllowed(origin) {
			if r.Method == http.MethodOptions {
				s.refuse(w, r, &apiError{Status: http.StatusForbidden, Code: "origin_not_allowed", Message: "this origin is not allowed"})
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if anyOrigin {
			// Any site may read, but never with the user's cookies: a
			// wildcard and credentials together would let every page on
			// the web read a signed-in user's inbox.
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		h.Set("Access-Control-Expose-Headers", "Idempotent-Replayed, Retry-After")
		if isPreflight {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Last-Event-ID, Idempotency-Key, X-API-Key")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.opts.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// recoverPanics turns a handler panic into a logged 500 instead of a
// dropped connection.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.Error("panic in handler", slog.String("path", r.URL.Path), slog.Any("panic", v))
				writeError(w, &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}
