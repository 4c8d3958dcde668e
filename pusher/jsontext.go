package pusher

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// This file holds the two byte-level JSON helpers every parser and encoder
// here shares: a scan that refuses what encoding/json would let through, and
// a string encoder for the hot path.

// Nesting bounds, the outermost object being level 1.
const (
	// maxBodyDepth bounds an HTTP API body. The deepest legal one,
	// {"batch":[{"channels":[…]}]}, nests 4 levels: data is a string, so
	// whatever it encodes does not count.
	maxBodyDepth = 8
	// MaxFrameDepth bounds a client frame. A client event's data is any
	// JSON value the sender chose; 32 levels are plenty for a whisper and
	// bound the work of compacting it.
	MaxFrameDepth = 32
)

var errNotUTF8 = errors.New("is not valid UTF-8")

// checkJSONText refuses, in one pass over the raw bytes and without
// recursion, what encoding/json handles badly for a relay:
//   - invalid UTF-8: decoding a string turns it silently into U+FFFD, and a
//     relayed json.RawMessage would carry the raw bytes to browsers;
//   - \u escapes of unpaired UTF-16 surrogates ("\ud800"): decoded as U+FFFD
//     too, and a broken string for JavaScript when relayed as is;
//   - nesting deeper than maxDepth: encoding/json allows 10,000 levels.
//
// Malformed JSON is left to the decoder; this scan only has to be right
// about what is inside and outside strings.
func checkJSONText(b []byte, maxDepth int) error {
	if !utf8.Valid(b) {
		return errNotUTF8
	}
	depth := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '"':
				inString = false
			case '\\':
				n, ok := surrogateEscape(b, i)
				if !ok {
					return fmt.Errorf("has an unpaired UTF-16 surrogate escape at byte %d", i)
				}
				i += n - 1 // skip the escape; the loop's i++ steps past it
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return fmt.Errorf("nests deeper than %d levels", maxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// surrogateEscape looks at the escape starting at b[i] (a backslash inside a
// string) and returns its length, and false when it is a \u escape of a
// surrogate that is not a high half followed by its low half. Any other
// escape counts as two bytes (a \u escape of a non-surrogate as six): the
// decoder reports a malformed one.
func surrogateEscape(b []byte, i int) (int, bool) {
	r, ok := hexEscape(b, i)
	if !ok {
		return 2, true
	}
	switch {
	case r < 0xD800 || r > 0xDFFF:
		return 6, true
	case r >= 0xDC00: // a low half with no high half before it
		return 6, false
	}
	if low, ok := hexEscape(b, i+6); ok && low >= 0xDC00 && low <= 0xDFFF {
		return 12, true
	}
	return 6, false
}

func hexEscape(b []byte, i int) (rune, bool) {
	if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[i+2 : i+6] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD (the output
// is always valid JSON and valid UTF-8, whatever the input), and U+2028 and
// U+2029 escaped as encoding/json does, so the text is also a valid
// JavaScript literal. <, > and & are left as they are: a WebSocket frame is
// not HTML, and Pusher does not escape them either.
func appendJSONString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		n := min(len(s)-i, utf8.UTFMax)
		r, size := utf8.DecodeRuneInString(string(s[i : i+n]))
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
