package broker

import "crypto/rand"

// newEpoch names a lifetime of a bus's data, the first part of every
// cursor: a memory bus takes one per process, a Redis bus one per lifetime
// of Redis's data (a new one when the data is lost or rolled back), so a
// cursor from an earlier lifetime is recognised as unknown rather than
// mistaken for a position in this one. Eight letters or digits: a cursor
// stays short, and ParseCursor accepts only alphanumeric epochs.
func newEpoch() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
