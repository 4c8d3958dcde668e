package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/matryer/is"

	"notification-service/auth"
)

const secret = "0123456789abcdef0123456789abcdef-test-secret"

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.:@=+-]{1,128}$`)

func newVerifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier([]byte(secret), 0, idPattern.MatchString)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func valid(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func TestVerifyAcceptsAGoodToken(t *testing.T) {
	is := is.New(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	c, err := newVerifier(t).Verify(sign(t, jwt.SigningMethodHS256, []byte(secret),
		jwt.MapClaims{"sub": "alice", "exp": exp.Unix(), "channels": []string{"orders.*", "news"}}))
	is.NoErr(err)
	is.Equal(c.UserID, "alice")
	is.Equal(c.Channels, []string{"orders.*", "news"})
	is.True(c.ExpiresAt.Equal(exp))
	is.True(c.MayJoin("orders.42"))
	is.True(!c.MayJoin("billing"))
}

// Laravel's keys are integers; 'sub' => $user->id encodes one.
func TestVerifyAcceptsAnIntegerSub(t *testing.T) {
	is := is.New(t)
	c, err := newVerifier(t).Verify(sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"sub": 42})))
	is.NoErr(err)
	is.Equal(c.UserID, "42")
	is.Equal(c.Channels, nil) // no claim: no channels
	is.True(!c.MayJoin("anything"))
}

func TestVerifyRefuses(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	good := sign(t, jwt.SigningMethodHS256, []byte(secret), valid(nil))
	header, payload, _ := strings.Cut(good, ".")
	payload, _, _ = strings.Cut(payload, ".")

	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", auth.ErrInvalidToken},
		{"garbage", "not-a-jwt", auth.ErrInvalidToken},
		{"other secret", sign(t, jwt.SigningMethodHS256, []byte(secret+"x"), valid(nil)), auth.ErrInvalidToken},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid(nil)), auth.ErrInvalidToken},
		{"alg none with the good header's claims", noneToken(payload), auth.ErrInvalidToken},
		{"signature stripped", header + "." + payload + ".", auth.ErrInvalidToken},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, valid(nil)), auth.ErrInvalidToken},
		{"HS256 keyed with the RSA public key", sign(t, jwt.SigningMethodHS256, pubPEM, valid(nil)), auth.ErrInvalidToken},
		{"HS512 with the right secret", sign(t, jwt.SigningMethodHS512, []byte(secret), valid(nil)), auth.ErrInvalidToken},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()})), auth.ErrExpiredToken},
		{"no exp", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"exp": nil})), auth.ErrInvalidToken},
		{"not valid yet", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"nbf": time.Now().Add(time.Hour).Unix()})), auth.ErrInvalidToken},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"iat": time.Now().Add(time.Hour).Unix()})), auth.ErrInvalidToken},
		{"no sub", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"sub": nil})), auth.ErrInvalidToken},
		{"sub outside the id alphabet", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"sub": "alice bob"})), auth.ErrInvalidToken},
		{"negative sub", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"sub": -1})), auth.ErrInvalidToken},
		{"channels not a list", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"channels": "orders.*"})), auth.ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newVerifier(t).Verify(tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || (tc.token != "" && strings.Contains(err.Error(), tc.token)) {
				t.Fatalf("the error %q repeats the secret or the token", err)
			}
		})
	}
}

// noneToken is an unsigned token written by hand, as an attacker would.
func noneToken(payload string) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return h + "." + payload + "."
}

func TestVerifyToleratesLeeway(t *testing.T) {
	is := is.New(t)
	v, err := auth.NewVerifier([]byte(secret), time.Minute, nil)
	is.NoErr(err)
	is.Equal(v.Leeway(), time.Minute)
	_, err = v.Verify(sign(t, jwt.SigningMethodHS256, []byte(secret), valid(jwt.MapClaims{"exp": time.Now().Add(-10 * time.Second).Unix()})))
	is.NoErr(err)
}

func TestNewVerifierRefusesAShortSecret(t *testing.T) {
	is := is.New(t)
	_, err := auth.NewVerifier([]byte(strings.Repeat("k", auth.MinSecretBytes-1)), 0, nil)
	is.True(err != nil)
	is.True(!strings.Contains(err.Error(), strings.Repeat("k", auth.MinSecretBytes-1)))
	_, err = auth.NewVerifier([]byte(strings.Repeat("k", auth.MinSecretBytes)), 0, nil)
	is.NoErr(err)
}

func TestKey(t *testing.T) {
	is := is.New(t)
	k := auth.NewKey("backend-key-0123456789")
	is.True(k.IsSet())
	is.True(k.Matches("backend-key-0123456789"))
	for _, wrong := range []string{"", "backend-key-012345678", "backend-key-01234567890", "Backend-key-0123456789"} {
		is.True(!k.Matches(wrong))
	}
	unset := auth.NewKey("")
	is.True(!unset.IsSet())
	is.True(!unset.Matches("")) // no key configured matches nothing, not the empty string
}

func TestChannelAllowed(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		channel  string
		want     bool
	}{
		{nil, "news", false},
		{[]string{}, "news", false},
		{[]string{"news"}, "news", true},
		{[]string{"news"}, "news2", false},
		{[]string{"news"}, "new", false},
		{[]string{"*"}, "anything.at:all", true},
		{[]string{"orders.*"}, "orders.1", true},
		{[]string{"orders.*"}, "orders.eu.1", true},
		{[]string{"orders.*"}, "orders.", true},
		{[]string{"orders.*"}, "orders", false},
		{[]string{"orders.*"}, "xorders.1", false},
		{[]string{"*.eu"}, "orders.eu", true},
		{[]string{"*.eu"}, "orders.eu.1", false},
		{[]string{"a*b*c"}, "aXXbYYc", true},
		{[]string{"a*b*c"}, "aXXcYYb", false},
		{[]string{"a**"}, "a", true},
		{[]string{"private-App.Models.User.1"}, "private-App.Models.User.1", true},
		{[]string{"private-App.Models.User.1"}, "private-App.Models.User.12", false},
		{[]string{"billing", "orders.*"}, "orders.7", true},
		// The pattern is a literal apart from *: no regexp or path syntax.
		{[]string{"orders.?"}, "orders.1", false},
		{[]string{"orders.[0-9]"}, "orders.1", false},
	} {
		if got := auth.ChannelAllowed(tc.patterns, tc.channel); got != tc.want {
			t.Errorf("ChannelAllowed(%q, %q) = %v, want %v", tc.patterns, tc.channel, got, tc.want)
		}
	}
}

// A hostile pattern costs time proportional to its length times the
// channel's, not exponential backtracking.
func TestChannelAllowedStaysLinearOnHostilePatterns(t *testing.T) {
	pattern := strings.Repeat("*a", 500) + "b"
	channel := strings.Repeat("a", 128)
	start := time.Now()
	if auth.ChannelAllowed([]string{pattern}, channel) {
		t.Fatal("matched a pattern that cannot match")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}
