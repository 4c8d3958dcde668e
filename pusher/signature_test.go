package pusher_test

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/pusher"
)

// Pusher's worked example (HTTP API reference, "Worked authentication
// example"): these values are the test vector every Pusher library checks.
var (
	docApp = pusher.App{ID: "3", Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8"}
	// docBody is the documented body, byte for byte.
	docBody = []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`)
)

const (
	docTimestamp = 1353088179
	docBodyMD5   = "ec365a775a4cd0599faeb73354201b6f"
	docSignature = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
	// docQuery is the documented request's query string.
	docQuery = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=" + docBodyMD5 + "&auth_signature=" + docSignature
)

func docRequest() pusher.APIRequest {
	return pusher.APIRequest{Method: "POST", Path: "/apps/3/events", RawQuery: docQuery, Body: docBody}
}

func TestVerifyRequestAcceptsPusherTestVector(t *testing.T) {
	is := is.New(t)
	sum := md5.Sum(docBody)
	is.Equal(hex.EncodeToString(sum[:]), docBodyMD5) // the documented body_md5 is the MD5 of the documented body
	// The documented string to sign, signed independently of the package:
	// printf 'POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f' \
	//   | openssl dgst -sha256 -hmac 7ad3773142a6692b25b8   → da454824…7e6c
	is.Equal(hmacHex(docApp.Secret, "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="+docBodyMD5), docSignature)

	now := time.Unix(docTimestamp, 0)
	is.NoErr(pusher.VerifyRequest(docApp, docRequest(), now, 0))
	is.NoErr(pusher.VerifyRequest(docApp, docRequest(), now.Add(599*time.Second), 0))
	is.NoErr(pusher.VerifyRequest(docApp, docRequest(), now.Add(-599*time.Second), 0))
}

func TestSignReproducesPusherTestVector(t *testing.T) {
	is := is.New(t)
	r := docRequest()
	r.RawQuery = ""
	q, err := pusher.Sign(docApp, r, time.Unix(docTimestamp, 0))
	is.NoErr(err)
	is.Equal(q, docQuery) // the documented request, parameter for parameter
}

func TestSignedRequestsVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name string
		r    pusher.APIRequest
	}{
		{"events with a body", pusher.APIRequest{Method: "POST", Path: "/apps/3/events", Body: docBody}},
		{"batch", pusher.APIRequest{Method: "POST", Path: "/apps/3/batch_events", Body: []byte(`{"batch":[]}`)}},
		{"GET without a body", pusher.APIRequest{Method: "GET", Path: "/apps/3/channels", RawQuery: "filter_by_prefix=presence-&info=user_count"}},
		{"a value needing escapes", pusher.APIRequest{Method: "GET", Path: "/apps/3/channels/presence-a", RawQuery: "info=user_count%2Csubscription_count&x=a+b%26c%3D"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			q, err := pusher.Sign(docApp, tc.r, now)
			is.NoErr(err)
			tc.r.RawQuery = q
			is.NoErr(pusher.VerifyRequest(docApp, tc.r, now, 0))
		})
	}
}

// TestVerifyRequestSignsAsPusherDoes pins the string to sign in the cases
// where the libraries could differ: each query is signed here by hand, with
// crypto/hmac, over the string Pusher's rules give.
func TestVerifyRequestSignsAsPusherDoes(t *testing.T) {
	const ts = "1800000000"
	now := time.Unix(1_800_000_000, 0)
	auth := "auth_key=278d425bdf160c739803&auth_timestamp=" + ts + "&auth_version=1.0"
	for _, tc := range []struct {
		name     string
		method   string
		query    string // without auth_signature
		toSign   string
		accepted bool
	}{
		{"values are URL-decoded, not re-escaped", "GET",
			auth + "&info=user_count%2Csubscription_count&filter_by_prefix=presence%2D",
			"GET\n/p\n" + auth + "&filter_by_prefix=presence-&info=user_count,subscription_count", true},
		{"a plus is a space", "GET", auth + "&name=Something+else",
			"GET\n/p\n" + auth + "&name=Something else", true},
		{"keys are lowercased and sorted", "GET", "AUTH_KEY=278d425bdf160c739803&Auth_Timestamp=" + ts + "&auth_version=1.0&Name=x",
			"GET\n/p\n" + auth + "&name=x", true},
		{"an array keeps its order, each value as k[]=v", "GET", auth + "&channels[]=b&channels[]=a",
			"GET\n/p\n" + auth + "&channels[]=b&channels[]=a", true},
		{"an array signed in another order is refused", "GET", auth + "&channels[]=b&channels[]=a",
			"GET\n/p\n" + auth + "&channels[]=a&channels[]=b", false},
		{"the method is uppercased", "post", auth,
			"POST\n/p\n" + auth, true},
		{"an empty value", "GET", auth + "&info=",
			"GET\n/p\n" + auth + "&info=", true},
		{"a parameter the signer did not see", "GET", auth + "&info=user_count",
			"GET\n/p\n" + auth, false},
		{"another path", "GET", auth, "GET\n/apps/3/events\n" + auth, false},
		{"keys are sorted once lowercased", "GET", auth + "&B=1&a=2",
			"GET\n/p\na=2&" + auth + "&b=1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r := pusher.APIRequest{Method: tc.method, Path: "/p", RawQuery: tc.query + "&auth_signature=" + hmacHex(docApp.Secret, tc.toSign)}
			err := pusher.VerifyRequest(docApp, r, now, 0)
			if tc.accepted {
				is.NoErr(err)
				return
			}
			is.True(errors.Is(err, pusher.ErrSignature))
		})
	}
}

func TestVerifyRequestRefusals(t *testing.T) {
	now := time.Unix(docTimestamp, 0)
	// resign rebuilds the documented request with some parameters changed
	// and signs it properly, so that only the change is refused.
	resign := func(params map[string]string, body []byte) pusher.APIRequest {
		vals := url.Values{"auth_key": {docApp.Key}, "auth_timestamp": {"1353088179"}, "auth_version": {"1.0"}, "body_md5": {docBodyMD5}}
		for k, v := range params {
			if v == "-" {
				vals.Del(k)
				continue
			}
			vals.Set(k, v)
		}
		toSign := "POST\n/apps/3/events\n" + mustUnescape(vals.Encode())
		vals.Set("auth_signature", hmacHex(docApp.Secret, toSign))
		return pusher.APIRequest{Method: "POST", Path: "/apps/3/events", RawQuery: vals.Encode(), Body: body}
	}
	mutate := func(f func(r *pusher.APIRequest)) pusher.APIRequest {
		r := docRequest()
		f(&r)
		return r
	}
	for _, tc := range []struct {
		name   string
		r      pusher.APIRequest
		now    time.Time
		window time.Duration
		status int
		reason error
	}{
		{"a signature off by one digit", mutate(func(r *pusher.APIRequest) {
			r.RawQuery = strings.Replace(r.RawQuery, docSignature, "ea454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c", 1)
		}), now, 0, 401, pusher.ErrSignature},
		{"a signature that is not hex", mutate(func(r *pusher.APIRequest) {
			r.RawQuery = strings.Replace(r.RawQuery, docSignature, "zz", 1)
		}), now, 0, 401, pusher.ErrSignature},
		{"a truncated signature", mutate(func(r *pusher.APIRequest) {
			r.RawQuery = strings.Replace(r.RawQuery, docSignature, docSignature[:62], 1)
		}), now, 0, 401, pusher.ErrSignature},
		{"an empty signature", mutate(func(r *pusher.APIRequest) {
			r.RawQuery = strings.Replace(r.RawQuery, docSignature, "", 1)
		}), now, 0, 401, pusher.ErrSignature},
		{"no signature", mutate(func(r *pusher.APIRequest) {
			r.RawQuery = strings.Replace(r.RawQuery, "&auth_signature="+docSignature, "", 1)
		}), now, 0, 401, pusher.ErrAuthMissing},
		{"control: a request resigned unchanged", resign(nil, docBody), now, 0, 0, nil},
		{"another app's key, correctly signed with our secret", resign(map[string]string{"auth_key": "aaaaaaaaaaaaaaaaaaaa"}, docBody), now, 0, 401, pusher.ErrAuthKey},
		{"no key", resign(map[string]string{"auth_key": "-"}, docBody), now, 0, 401, pusher.ErrAuthMissing},
		{"a timestamp 600 s old", docRequest(), now.Add(600 * time.Second), 0, 401, pusher.ErrAuthTimestamp},
		{"a timestamp 600 s ahead", docRequest(), now.Add(-600 * time.Second), 0, 401, pusher.ErrAuthTimestamp},
		{"a timestamp out of a 30 s window", docRequest(), now.Add(30 * time.Second), 30 * time.Second, 401, pusher.ErrAuthTimestamp},
		{"a timestamp in a 30 s window", docRequest(), now.Add(29 * time.Second), 30 * time.Second, 0, nil},
		{"a timestamp that is not a number", resign(map[string]string{"auth_timestamp": "soon"}, docBody), now, 0, 401, pusher.ErrAuthTimestamp},
		{"a signed timestamp", resign(map[string]string{"auth_timestamp": "+1353088179"}, docBody), now, 0, 401, pusher.ErrAuthTimestamp},
		{"a negative timestamp", resign(map[string]string{"auth_timestamp": "-9223372036854775808"}, docBody), now, 0, 401, pusher.ErrAuthTimestamp},
		{"a timestamp past int64", resign(map[string]string{"auth_timestamp": "99999999999999999999"}, docBody), now, 0, 401, pusher.ErrAuthTimestamp},
		{"an empty timestamp", resign(map[string]string{"auth_timestamp": ""}, docBody), now, 0, 401, pusher.ErrAuthTimestamp},
		{"no timestamp", resign(map[string]string{"auth_timestamp": "-"}, docBody), now, 0, 401, pusher.ErrAuthMissing},
		{"auth_version 2.0", resign(map[string]string{"auth_version": "2.0"}, docBody), now, 0, 401, pusher.ErrAuthVersion},
		{"no auth_version", resign(map[string]string{"auth_version": "-"}, docBody), now, 0, 401, pusher.ErrAuthMissing},
		{"the body altered after signing", mutate(func(r *pusher.APIRequest) {
			r.Body = []byte(strings.Replace(string(docBody), "project-3", "project-4", 1))
		}), now, 0, 401, pusher.ErrBodyMD5},
		{"a body appended to a bodiless signed request", resign(map[string]string{"body_md5": "-"}, docBody), now, 0, 401, pusher.ErrAuthMissing},
		{"body_md5 for a body that is not there", mutate(func(r *pusher.APIRequest) { r.Body = nil }), now, 0, 401, pusher.ErrBodyMD5},
		{"body_md5 in capitals is still the MD5", resign(map[string]string{"body_md5": strings.ToUpper(docBodyMD5)}, docBody), now, 0, 0, nil},
		{"a duplicated parameter", mutate(func(r *pusher.APIRequest) { r.RawQuery += "&info=a&info=b" }), now, 0, 400, pusher.ErrMalformedQuery},
		{"a duplicated auth_key", mutate(func(r *pusher.APIRequest) { r.RawQuery += "&auth_key=" + docApp.Key }), now, 0, 400, pusher.ErrMalformedQuery},
		{"one parameter under two spellings", mutate(func(r *pusher.APIRequest) { r.RawQuery += "&AUTH_KEY=x" }), now, 0, 400, pusher.ErrMalformedQuery},
		{"a malformed escape", mutate(func(r *pusher.APIRequest) { r.RawQuery += "&info=%zz" }), now, 0, 400, pusher.ErrMalformedQuery},
		{"a semicolon separator", mutate(func(r *pusher.APIRequest) { r.RawQuery += ";info=x" }), now, 0, 400, pusher.ErrMalformedQuery},
		{"an empty query", mutate(func(r *pusher.APIRequest) { r.RawQuery = "" }), now, 0, 401, pusher.ErrAuthMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			err := pusher.VerifyRequest(docApp, tc.r, tc.now, tc.window)
			if tc.status == 0 {
				is.NoErr(err)
				return
			}
			var ae *pusher.APIError
			is.True(errors.As(err, &ae))
			is.Equal(ae.Status, tc.status)
			is.True(errors.Is(err, tc.reason))
			is.Equal(ae.Field, "")
			assertNoSecrets(t, err.Error())
		})
	}
}

// The secret, and the signature the server computed, never appear in an
// error: an attacker who reads error messages learns nothing to forge with.
func TestVerifyRequestErrorsHoldNoSecret(t *testing.T) {
	is := is.New(t)
	r := docRequest()
	r.RawQuery = strings.Replace(r.RawQuery, docSignature, strings.Repeat("0", 64), 1)
	err := pusher.VerifyRequest(docApp, r, time.Unix(docTimestamp, 0), 0)
	is.True(errors.Is(err, pusher.ErrSignature))
	assertNoSecrets(t, err.Error())
	// It does say what to sign, as Pusher's own message does.
	is.True(strings.Contains(err.Error(), `POST\n/apps/3/events\nauth_key=278d425bdf160c739803`))
}

func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{docApp.Secret, docSignature} {
		if strings.Contains(s, secret) {
			t.Fatalf("message %q holds a secret", s)
		}
	}
}

func hmacHex(secret, msg string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(msg))
	return hex.EncodeToString(h.Sum(nil))
}

func mustUnescape(q string) string {
	s, err := url.QueryUnescape(q)
	if err != nil {
		panic(err)
	}
	return s
}

// An app whose secret was left empty refuses every request, even one signed
// with the empty key anybody can compute.
func TestVerifyRequestRefusesAnAppWithoutSecret(t *testing.T) {
	is := is.New(t)
	open := pusher.App{ID: "3", Key: docApp.Key}
	r := pusher.APIRequest{Method: "POST", Path: "/apps/3/events", Body: docBody}
	q, err := pusher.Sign(open, r, time.Unix(docTimestamp, 0))
	is.NoErr(err)
	r.RawQuery = q
	err = pusher.VerifyRequest(open, r, time.Unix(docTimestamp, 0), 0)
	is.True(errors.Is(err, pusher.ErrAuthKey))
}
