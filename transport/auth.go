package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"notification-service/auth"
	"notification-service/pusher"
)

// Who may call what (docs/ARCHITECTURE.md#security-and-hostile-input; README "Security"):
//
//   - the backend endpoints (send, schedule, schedules, server-side
//     subscribe) need the API key when one is configured;
//   - the streams and the inbox endpoints need, in token mode (a JWT secret
//     is configured), a user's token, which opens only that user's stream
//     and inbox; the API key opens any inbox, never a stream;
//   - in open mode (no JWT secret), ?user_id= and the inbox path name the
//     user, as in the seed.
//
// No credential is ever logged: refusals are recorded with their code and
// the request's path, never its query string or headers.

// bearerToken returns the credential of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// userToken finds a browser's token: the Authorization header, then the
// token query parameter (EventSource cannot set headers), then the cookie.
// An explicit credential wins over the ambient one, so a stale cookie does
// not shadow a fresh token in the URL.
func (s *Server) userToken(r *http.Request) string {
	if t, ok := bearerToken(r); ok {
		return t
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	if s.opts.AuthCookie != "" && s.cookieTrusted(r) {
		if c, err := r.Cookie(s.opts.AuthCookie); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// cookieTrusted says whether a cookie on r may be taken as the user's
// intent. A browser attaches cookies to requests any site starts, and a
// WebSocket upgrade is not protected by CORS: a cookie counts only on a
// request with no Origin (not from a page), from the service's own origin,
// or from an origin ALLOWED_ORIGINS names explicitly (a "*" lends no
// cookies, as in CORS).
func (s *Server) cookieTrusted(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin == "" || s.originAllowed(origin) || sameHost(origin, r.Host)
}

func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// authenticateUser verifies the browser's token and returns its claims.
func (s *Server) authenticateUser(r *http.Request) (auth.Claims, *apiError) {
	raw := s.userToken(r)
	if raw == "" {
		return auth.Claims{}, &apiError{Status: http.StatusUnauthorized, Code: "token_missing",
			Message: "a token is required: ?token=, the " + s.opts.AuthCookie + " cookie, or Authorization: Bearer"}
	}
	claims, err := s.tokens.Verify(raw)
	switch {
	case errors.Is(err, auth.ErrExpiredToken):
		return auth.Claims{}, &apiError{Status: http.StatusUnauthorized, Code: "token_expired", Message: "the token has expired; get a new one"}
	case err != nil:
		return auth.Claims{}, &apiError{Status: http.StatusUnauthorized, Code: "token_invalid", Message: strings.TrimPrefix(err.Error(), "auth: ")}
	}
	return claims, nil
}

// presentsAPIKey says whether r carries what may be the API key: X-API-Key,
// or an Authorization: Bearer credential that is the key (a user's token
// is not).
func (s *Server) presentsAPIKey(r *http.Request) bool {
	if r.Header.Get("X-API-Key") != "" {
		return true
	}
	b, ok := bearerToken(r)
	return ok && s.apiKey.Matches(b)
}

// presentedKey is the API key a request carries: X-API-Key, else the
// Authorization: Bearer credential.
func presentedKey(r *http.Request) (string, bool) {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k, true
	}
	return bearerToken(r)
}

// backend guards an endpoint only the application's backend calls. Without
// an API key configured it is open, as in the seed. A request that passed
// it with the key is the trusted backend (fromBackend).
func (s *Server) backend(next http.Handler) http.Handler {
	if !s.apiKey.IsSet() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := s.checkAPIKey(r); e != nil {
			s.refuse(w, r, e)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, true)))
	})
}

// backendKey marks, in a request's context, that it carried the API key.
type backendKey struct{}

// fromBackend says whether r was authenticated with the API key: the
// application's own backend, whose sends are not rate limited (a queue
// worker sends in bursts, and the key's holder could raise the limits
// anyway).
func fromBackend(r *http.Request) bool {
	ok, _ := r.Context().Value(backendKey{}).(bool)
	return ok
}

func (s *Server) checkAPIKey(r *http.Request) *apiError {
	key, ok := presentedKey(r)
	if !ok {
		return &apiError{Status: http.StatusUnauthorized, Code: "api_key_missing",
			Message: "this endpoint needs the API key: Authorization: Bearer <API_KEY> or X-API-Key: <API_KEY>"}
	}
	if s.apiKey.Matches(key) {
		return nil
	}
	// A valid user token is a known caller asking for too much, not a bad
	// credential: say so, so the mistake is found at once.
	if s.tokens != nil {
		if _, err := s.tokens.Verify(key); err == nil {
			return &apiError{Status: http.StatusForbidden, Code: "forbidden",
				Message: "a user's token may only read and mark its own inbox; this endpoint needs the API key"}
		}
	}
	return &apiError{Status: http.StatusUnauthorized, Code: "api_key_invalid", Message: "the API key is not valid"}
}

// ownInbox guards the inbox endpoints (path {user_id}): in token mode the
// API key acts on any inbox and a user's token only on its own. In open
// mode they stay open, as in the seed.
func (s *Server) ownInbox(next http.Handler) http.Handler {
	if s.tokens == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := r.Header.Get("X-API-Key"); k != "" {
			if s.apiKey.Matches(k) {
				next.ServeHTTP(w, r)
				return
			}
			s.refuse(w, r, &apiError{Status: http.StatusUnauthorized, Code: "api_key_invalid", Message: "the API key is not valid"})
			return
		}
		// Authorization: Bearer carries either credential: the key is
		// tried first (in constant time), then the token.
		if b, ok := bearerToken(r); ok && s.apiKey.Matches(b) {
			next.ServeHTTP(w, r)
			return
		}
		claims, e := s.authenticateUser(r)
		if e != nil {
			s.refuse(w, r, e)
			return
		}
		if claims.UserID != r.PathValue("user_id") {
			s.refuse(w, r, forbiddenUser())
			return
		}
		next.ServeHTTP(w, r)
	})
}

func forbiddenUser() *apiError {
	return &apiError{Status: http.StatusForbidden, Code: "forbidden_user", Message: "the token belongs to another user"}
}

// forbiddenChannel refuses the first channel claims do not allow, if any.
// nil claims (open mode) allow every channel but Pusher's private and
// presence ones (private-…, presence-…): those are Laravel's to authorize,
// through Echo's signed subscribe, or a token's channels claim.
func forbiddenChannel(claims *auth.Claims, channels []string) *apiError {
	if claims == nil {
		for _, ch := range channels {
			if pusher.KindOf(ch).NeedsAuth() {
				return &apiError{Status: http.StatusForbidden, Code: "forbidden_channel", Field: "channels",
					Message: fmt.Sprintf("channel %q is private: subscribe through Laravel Echo, or with a token that allows it", ch)}
			}
		}
		return nil
	}
	for _, ch := range channels {
		if !claims.MayJoin(ch) {
			return &apiError{Status: http.StatusForbidden, Code: "forbidden_channel", Field: "channels",
				Message: fmt.Sprintf("the token does not allow channel %q", ch)}
		}
	}
	return nil
}

// refuse answers an authentication or authorization failure and records
// it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		s.denied(e, requestAttrs(r)...)
	}
	writeError(w, e)
}

// denied records a refusal as the audit action "denied": a credential or a
// permission refused (401, 403), or a bound met (429: rates, connection
// slots, schedule caps). The trail samples it like every action, so a storm
// of refusals costs it no more than a storm of connects. It returns e.
func (s *Server) denied(e *apiError, attrs ...slog.Attr) *apiError {
	s.audit.Record("denied", append([]slog.Attr{slog.String("code", e.Code)}, attrs...)...)
	return e
}

// requestAttrs name a refused request in its denied record: the path,
// never the query string (?token=) or a header.
func requestAttrs(r *http.Request) []slog.Attr {
	return []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("remote_addr", r.RemoteAddr)}
}
