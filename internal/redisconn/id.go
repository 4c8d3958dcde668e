package redisconn

import (
	"crypto/rand"
	"encoding/hex"
)

// RandomHex returns n random bytes in hex: names no other instance picks
// (an instance, a claim, a request awaiting its answer, a probe key).
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
