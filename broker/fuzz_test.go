package broker_test

import (
	"errors"
	"strings"
	"testing"

	"notification-service/broker"
)

// FuzzParseCursor: a resume cursor comes from the client (Last-Event-ID,
// last_event_id), so ParseCursor sees anything. It never panics, refuses
// with ErrBadCursor and a zero cursor, and a cursor it accepts survives a
// round trip through its own String form.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{
		"abc123-1", "0-0", "Zq9-18446744073709551615",
		"abc-18446744073709551616", // one past uint64
		"abc-007", "abc--1", "abc-+1", "abc-0x10", "abc-1_000", "abc-1e3", "abc- 1",
		"-1", "abc-", "abc", "", "-", "a-b-c", "é-1", "abc\x00-1",
		strings.Repeat("a", 62) + "-1", strings.Repeat("a", 63) + "-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := broker.ParseCursor(s)
		if err != nil {
			if !errors.Is(err, broker.ErrBadCursor) {
				t.Fatalf("ParseCursor(%q): error %v is not ErrBadCursor", s, err)
			}
			if c != (broker.Cursor{}) {
				t.Fatalf("ParseCursor(%q) failed but returned %+v", s, c)
			}
			return
		}
		if c.Epoch == "" || strings.Trim(c.Epoch, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
			t.Fatalf("ParseCursor(%q) accepted epoch %q", s, c.Epoch)
		}
		back, err := broker.ParseCursor(c.String())
		if err != nil {
			t.Fatalf("ParseCursor(%q) = %+v, whose String %q does not parse: %v", s, c, c.String(), err)
		}
		if back != c {
			t.Fatalf("ParseCursor(%q) = %+v, but its String %q parses to %+v", s, c, c.String(), back)
		}
		if len(c.String()) > len(s) {
			t.Fatalf("ParseCursor(%q): String %q is longer than the input", s, c.String())
		}
	})
}
