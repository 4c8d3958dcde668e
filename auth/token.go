package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretBytes is the shortest JWT secret accepted: HS256 is as strong as
// its key, and RFC 7518 asks for a key at least as long as the hash (256
// bits).
const MinSecretBytes = 32

// DefaultLeeway is the clock skew tolerated between the backend that mints
// tokens and this service, on exp, nbf and iat alike.
const DefaultLeeway = 5 * time.Second

// algorithm is the only signing algorithm accepted. Naming it to the parser
// is what refuses "none" and algorithm switching (an RS256 token, or an
// HS256 token keyed with someone's RSA public key).
const algorithm = "HS256"

// Claims is what a verified token says about its holder.
type Claims struct {
	// UserID is the token's sub: the user whose stream and inbox it opens.
	UserID string
	// Channels are the token's channel patterns (see ChannelAllowed). No
	// channels claim, or an empty one, allows no channel: the holder gets
	// only notifications addressed to it.
	Channels []string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
}

// MayJoin reports whether the token allows subscribing to channel.
func (c Claims) MayJoin(channel string) bool { return ChannelAllowed(c.Channels, channel) }

// Verifier checks tokens signed with one secret.
type Verifier struct {
	secret    []byte
	leeway    time.Duration
	validUser func(string) bool
	parser    *jwt.Parser
}

// NewVerifier returns a Verifier for HS256 tokens signed with secret,
// tolerating leeway of clock skew. validUser judges a token's sub (the
// service's id alphabet); nil accepts any non-empty sub. A secret shorter
// than MinSecretBytes is an error: such a key can be brute-forced offline
// from any one token.
func NewVerifier(secret []byte, leeway time.Duration, validUser func(string) bool) (*Verifier, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("auth: the JWT secret is %d bytes; it must be at least %d", len(secret), MinSecretBytes)
	}
	return &Verifier{
		// A copy: the caller's slice may change, the key must not.
		secret:    bytes.Clone(secret),
		leeway:    leeway,
		validUser: validUser,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{algorithm}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			// Canonical base64 only: one token, one spelling.
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// Leeway is the clock skew the Verifier tolerates; a live stream ends this
// long after its token's exp, as a new connection would be refused then.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// Verify checks token's signature, algorithm and times and returns its
// claims. Errors wrap ErrExpiredToken or ErrInvalidToken.
func (v *Verifier) Verify(token string) (Claims, error) {
	var tc tokenClaims
	_, err := v.parser.ParseWithClaims(token, &tc, v.key)
	if err != nil {
		return Claims{}, tokenError(err)
	}
	if tc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: it has no sub (the user id)", ErrInvalidToken)
	}
	if v.validUser != nil && !v.validUser(string(tc.Subject)) {
		return Claims{}, fmt.Errorf("%w: its sub is not a valid user id", ErrInvalidToken)
	}
	return Claims{UserID: string(tc.Subject), Channels: tc.Channels, ExpiresAt: tc.ExpiresAt.Time}, nil
}

// key hands the parser the secret, and only for HS256: the parser already
// refuses other algorithms, and this keeps a future change to its options
// from turning the secret into, say, an RSA public key's stand-in.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodHS256 {
		return nil, fmt.Errorf("auth: algorithm %s is not accepted", t.Method.Alg())
	}
	return v.secret, nil
}

// tokenError turns the parser's error into one of the package's, with a
// reason safe to show: fixed words, nothing copied from the token (its
// header is the sender's to write).
func tokenError(err error) error {
	reason := "it is not a well-formed JWT"
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: get a new token", ErrExpiredToken)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = "it has no exp"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = "it is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = "it was issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// An algorithm other than HS256 lands here too.
		reason = "its signature does not verify (only HS256 with this service's secret is accepted)"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		reason = "its claims are invalid"
	}
	return fmt.Errorf("%w: %s", ErrInvalidToken, reason)
}

// tokenClaims is the token's payload. It is the package's own rather than
// jwt.RegisteredClaims so that sub may be an integer: Laravel's user keys
// are, and a PHP array with 'sub' => $user->id encodes one.
type tokenClaims struct {
	Subject   subject          `json:"sub"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	Channels  []string         `json:"channels"`
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *tokenClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *tokenClaims) GetSubject() (string, error)                  { return string(c.Subject), nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// subject is a sub claim given as a string or a non-negative integer.
type subject string

var digits = regexp.MustCompile(`^[0-9]+$`)

func (s *subject) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*s = subject(str)
		return nil
	}
	if !digits.Match(b) {
		return errors.New("sub must be a string or a non-negative integer")
	}
	*s = subject(b)
	return nil
}
