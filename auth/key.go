package auth

import (
	"crypto/sha256"
	"crypto/subtle"
)

// Key is the backend's API key. Only its SHA-256 digest is kept: comparing
// digests takes the same time whatever the presented key's length or
// content (subtle.ConstantTimeCompare alone returns early on a length
// mismatch), and the key itself is never in memory to leak into a log or a
// dump.
type Key struct {
	digest [sha256.Size]byte
	set    bool
}

// NewKey returns the Key for key; an empty key is a Key that is not set.
func NewKey(key string) Key {
	if key == "" {
		return Key{}
	}
	return Key{digest: sha256.Sum256([]byte(key)), set: true}
}

// IsSet says whether an API key is configured.
func (k Key) IsSet() bool { return k.set }

// Matches reports, in constant time, whether presented is the key. Nothing
// matches a Key that is not set.
func (k Key) Matches(presented string) bool {
	d := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(k.digest[:], d[:]) == 1 && k.set
}
