// Package auth decides who a caller is and what it may reach, without
// knowing HTTP: it verifies a browser's HS256 JSON Web Token (signed by the
// application's backend with the shared JWT_SECRET), compares the backend's
// API key in constant time, and matches channel names against the patterns
// a token allows. Where credentials come from (query, cookie, header), how
// a refusal is answered and what is logged belong to transport.
package auth

import "errors"

var (
	// ErrInvalidToken means a token is malformed, signed with another key or
	// algorithm, or lacks what the service needs (sub, exp). Errors wrapping
	// it say which, in words safe to show the client: never the token.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrExpiredToken means a token was valid but its exp has passed: the
	// client should fetch a new token rather than retry with this one.
	ErrExpiredToken = errors.New("auth: token expired")
)
