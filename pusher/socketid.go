package pusher

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
)

// socketIDPart is the bound of each half of a socket id: two numbers below
// 10^10 give about 66 bits, so one client cannot guess another's id (a
// socket id signs channel subscriptions and names the connection
// socket_id/toOthers excludes).
const socketIDPart = 10_000_000_000

// maxSocketIDLength bounds a socket id accepted from a request: the ids
// handed out here are at most 21 characters, and any digits.digits id of
// Pusher's or Reverb's fits too.
const maxSocketIDLength = 64

// NewSocketID returns a fresh socket id of the form digits.digits, each half
// drawn uniformly from crypto/rand below 10^10 (Pusher's ids look like
// 445294.25458239; pusher-http-php and Reverb check ^\d+\.\d+$).
func NewSocketID() string {
	// One read for both halves; a half past the rejection bound (one draw
	// in two billion) is drawn again alone.
	var r [16]byte
	_, _ = rand.Read(r[:]) // never fails: see randomBelow
	left, right := binary.LittleEndian.Uint64(r[:8]), binary.LittleEndian.Uint64(r[8:])
	if left >= socketIDLimit {
		left = randomBelow(socketIDPart)
	}
	if right >= socketIDLimit {
		right = randomBelow(socketIDPart)
	}
	var buf [32]byte
	b := strconv.AppendUint(buf[:0], left%socketIDPart, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, right%socketIDPart, 10)
	return string(b)
}

// socketIDLimit is the largest multiple of socketIDPart that fits in 64
// bits: below it, v % socketIDPart is uniform.
const socketIDLimit = ^uint64(0) - ^uint64(0)%socketIDPart

// randomBelow draws uniformly from [0, n) by rejection: values at or past the
// largest multiple of n that fits in 64 bits would favour small results.
func randomBelow(n uint64) uint64 {
	limit := ^uint64(0) - ^uint64(0)%n
	var buf [8]byte
	for {
		// crypto/rand.Read never fails (Go 1.24: it crashes the program
		// rather than return predictable bytes).
		_, _ = rand.Read(buf[:])
		if v := binary.LittleEndian.Uint64(buf[:]); v < limit {
			return v % n
		}
	}
}

// ValidSocketID says whether s has the form of a socket id: one or more
// ASCII digits, a dot, one or more ASCII digits (^\d+\.\d+$ as Pusher's
// libraries check it), at most 64 characters.
func ValidSocketID(s string) bool {
	if len(s) < 3 || len(s) > maxSocketIDLength {
		return false
	}
	dot := -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && dot < 0:
			dot = i
		case c < '0' || c > '9':
			return false
		}
	}
	return dot > 0 && dot < len(s)-1
}
