package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// streamToken returns a signer of stream tokens for a server that checks
// them (JWT_SECRET set; docs/ARCHITECTURE.md#security-and-hostile-input):
// HS256 JWTs whose sub is the user, valid for an hour. Written out by hand, a dozen lines, rather than
// adding a JWT library to the load generator.
func streamToken(secret string) func(user string) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	exp := time.Now().Add(time.Hour).Unix()
	return func(user string) string {
		claims := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":%q,"exp":%d}`, user, exp))
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(header + "." + claims))
		return header + "." + claims + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
}
