package pusher

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultTimestampWindow is how far auth_timestamp may be from the server's
// clock when VerifyRequest is given no window: Pusher's "within 600s of the
// current time".
const DefaultTimestampWindow = 600 * time.Second

// AuthVersion is the only auth_version Pusher defines.
const AuthVersion = "1.0"

// APIRequest is what VerifyRequest needs of an HTTP API request: the method,
// the path as the client sent it (r.URL.Path: a proxy that rewrites the path
// breaks the signature, as it does with Pusher), the raw query string
// (r.URL.RawQuery, parsed here so that duplicates are seen) and the whole
// body as read.
type APIRequest struct {
	Method   string
	Path     string
	RawQuery string
	Body     []byte
}

// VerifyRequest authenticates a Pusher HTTP API request as Pusher's server
// does (the pusher-signature library behind Pusher's API, whose rules
// pusher-http-php, pusher-http-node and Reverb also sign or check by):
//
//   - auth_key, auth_timestamp, auth_version and auth_signature are present,
//     and body_md5 too when there is a body;
//   - auth_key is the app's key and auth_version is 1.0;
//   - auth_timestamp is within window of now (strictly, as Pusher's "error
//     >= grace" refuses; 0 means DefaultTimestampWindow), so a captured
//     request cannot be replayed for ever;
//   - body_md5 is the hex MD5 of the body received, recomputed here: a body
//     altered after signing is refused even though body_md5 is signed;
//   - auth_signature is the hex HMAC-SHA256, keyed with the app secret, of
//     METHOD\nPATH\nQUERY, where QUERY is every parameter but
//     auth_signature, keys lowercased, sorted by key, joined k=v&… with the
//     values URL-decoded and not re-escaped; compared in constant time.
//
// A parameter given twice (or under two spellings of one lowercased name) is
// refused, because the Pusher libraries disagree on how to sign it; a key
// ending in [] may repeat, each value signed as k[]=v in order, as Pusher's
// server signs the array form its documentation describes.
//
// Every error is an *APIError: 400 for a malformed query, 401 for every
// authentication failure (Pusher's "401 Authentication error"; Reverb's
// "Authentication signature invalid."). Its message may say which string
// should have been signed, as Pusher's does, but never the secret or the
// signature expected.
func VerifyRequest(app App, r APIRequest, now time.Time, window time.Duration) error {
	q, err := parseSignedQuery(r.RawQuery)
	if err != nil {
		return err
	}
	if app.Secret == "" {
		// Anyone can compute an HMAC keyed with nothing: a misconfigured
		// app refuses everything, and says no more than a wrong key.
		return unauthorized(ErrAuthKey, "unknown auth_key")
	}
	for _, name := range []string{"auth_key", "auth_timestamp", "auth_version", "auth_signature"} {
		if _, ok := q.single[name]; !ok {
			return unauthorized(ErrAuthMissing, "missing parameter: "+name)
		}
	}
	if !constantTimeEqual(q.single["auth_key"], app.Key) {
		return unauthorized(ErrAuthKey, "unknown auth_key")
	}
	if v := q.single["auth_version"]; v != AuthVersion {
		return unauthorized(ErrAuthVersion, fmt.Sprintf("auth_version %q is not supported; use %s", truncate(v, 16), AuthVersion))
	}
	if err := checkTimestamp(q.single["auth_timestamp"], now, window); err != nil {
		return err
	}
	sum, hasMD5 := q.single["body_md5"]
	switch {
	case len(r.Body) > 0 && !hasMD5:
		return unauthorized(ErrAuthMissing, "missing parameter: body_md5 (the request has a body)")
	case hasMD5 && !strings.EqualFold(sum, bodyMD5(r.Body)):
		return unauthorized(ErrBodyMD5, "body_md5 is not the MD5 of the body received: the body changed after it was signed")
	}
	toSign := stringToSign(r.Method, r.Path, q.params)
	got, err := hex.DecodeString(q.single["auth_signature"])
	if err != nil || !hmac.Equal(got, mac(app.Secret, toSign)) {
		return unauthorized(ErrSignature, fmt.Sprintf("invalid signature: sign HMAC-SHA256 hex of %q with the app secret", truncate(toSign, 512)))
	}
	return nil
}

// Sign returns r.RawQuery with Pusher's authentication parameters added
// (auth_key, auth_timestamp, auth_version, body_md5 when r has a body,
// auth_signature), as Pusher's client libraries build it: the query a
// request must carry for VerifyRequest to accept it. It exists for tests,
// which play the part of Laravel's broadcaster.
func Sign(app App, r APIRequest, at time.Time) (string, error) {
	vals, err := url.ParseQuery(r.RawQuery)
	if err != nil {
		return "", fmt.Errorf("pusher: sign: %w", err)
	}
	vals.Del("auth_signature")
	vals.Del("body_md5")
	vals.Set("auth_key", app.Key)
	vals.Set("auth_timestamp", strconv.FormatInt(at.Unix(), 10))
	vals.Set("auth_version", AuthVersion)
	if len(r.Body) > 0 {
		vals.Set("body_md5", bodyMD5(r.Body))
	}
	q, err := parseSignedQuery(vals.Encode())
	if err != nil {
		return "", fmt.Errorf("pusher: sign: %w", err)
	}
	sig := hex.EncodeToString(mac(app.Secret, stringToSign(r.Method, r.Path, q.params)))
	return vals.Encode() + "&auth_signature=" + sig, nil
}

type queryParam struct{ key, value string }

// signedQuery is a parsed query: params in signing order (auth_signature
// left out), single the parameters given once, by lowercased name.
type signedQuery struct {
	params []queryParam
	single map[string]string
}

func parseSignedQuery(raw string) (signedQuery, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return signedQuery{}, &APIError{Status: 400, Message: "the query string does not parse: " + truncate(err.Error(), 200), Err: ErrMalformedQuery}
	}
	q := signedQuery{single: make(map[string]string, len(vals))}
	spelling := make(map[string]string, len(vals))
	for k, vs := range vals {
		lk := strings.ToLower(k)
		if other, dup := spelling[lk]; dup {
			return signedQuery{}, &APIError{Status: 400, Message: fmt.Sprintf("the query names %q and %q, one parameter for Pusher: send it once", truncate(other, 64), truncate(k, 64)), Err: ErrMalformedQuery}
		}
		spelling[lk] = k
		if len(vs) > 1 && !strings.HasSuffix(lk, "[]") {
			return signedQuery{}, &APIError{Status: 400, Message: fmt.Sprintf("the query names %q %d times: send it once", truncate(k, 64), len(vs)), Err: ErrMalformedQuery}
		}
		if len(vs) == 1 {
			q.single[lk] = vs[0]
		}
		if lk == "auth_signature" {
			continue
		}
		for _, v := range vs {
			q.params = append(q.params, queryParam{lk, v})
		}
	}
	// Stable: the values of a repeated k[] keep their order.
	slices.SortStableFunc(q.params, func(a, b queryParam) int { return strings.Compare(a.key, b.key) })
	return q, nil
}

func stringToSign(method, path string, params []queryParam) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

func checkTimestamp(raw string, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = DefaultTimestampWindow
	}
	w := int64(window / time.Second)
	if w < 1 {
		w = 1
	}
	ts, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || raw == "" || raw[0] < '0' || raw[0] > '9' {
		return unauthorized(ErrAuthTimestamp, fmt.Sprintf("auth_timestamp %q is not a number of seconds since 1970", truncate(raw, 32)))
	}
	// Compared as bounds, not as a difference that could overflow.
	n := now.Unix()
	if ts <= n-w || ts >= n+w {
		return unauthorized(ErrAuthTimestamp, fmt.Sprintf("auth_timestamp %d is not within %ds of the server's time (%s)", ts, w, now.UTC().Format(time.RFC3339)))
	}
	return nil
}

func unauthorized(reason error, msg string) *APIError {
	return &APIError{Status: 401, Message: msg, Err: reason}
}

func mac(secret, msg string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func bodyMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// constantTimeEqual compares two public-but-checked strings (keys) without
// an early exit; hmac.Equal is constant time for equal lengths.
func constantTimeEqual(a, b string) bool {
	return hmac.Equal([]byte(a), []byte(b))
}
