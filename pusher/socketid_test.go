package pusher_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/pusher"
)

func TestNewSocketID(t *testing.T) {
	is := is.New(t)
	const n = 10_000
	seen := make(map[string]bool, n)
	var firstDigits [10]int
	for range n {
		id := pusher.NewSocketID()
		is.True(pusher.ValidSocketID(id))
		is.True(len(id) <= 21)
		is.True(!seen[id]) // no collision in 10,000 draws of ~66 bits
		seen[id] = true
		left, right, ok := strings.Cut(id, ".")
		is.True(ok)
		for _, part := range []string{left, right} {
			v, err := strconv.ParseUint(part, 10, 64)
			is.NoErr(err)
			is.True(v < 10_000_000_000)
			is.Equal(strconv.FormatUint(v, 10), part) // canonical: no leading zeros
		}
		firstDigits[left[0]-'0']++
	}
	// Uniform below 10^10: 90% of the left halves have ten digits, so
	// their leading digit is spread over 1-9. A broken generator (a counter,
	// a small range) fails this at once.
	for d := 1; d <= 9; d++ {
		is.True(firstDigits[d] > n/9/2)
	}
}

func TestValidSocketID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"1234.1234", true},
		{"445294.25458239", true},
		{"0.0", true},
		{"1.2", true},
		{strings.Repeat("1", 31) + "." + strings.Repeat("2", 32), true},
		{strings.Repeat("1", 32) + "." + strings.Repeat("2", 32), false}, // 65 characters
		{"", false},
		{"1234", false},
		{"1234.", false},
		{".1234", false},
		{"1.2.3", false},
		{"1..2", false},
		{"12a.34", false},
		{"-1.2", false},
		{"1.2\n", false}, // PCRE's $ would let a trailing newline through
		{" 1.2", false},
		{"١.٢", false}, // Arabic-Indic digits are not \d here
		{"1,2", false},
	} {
		if got := pusher.ValidSocketID(tc.id); got != tc.ok {
			t.Errorf("ValidSocketID(%q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
}
