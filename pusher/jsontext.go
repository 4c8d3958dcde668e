package pusher

import (
	"unicode/utf8"
)

// This file holds the nesting bounds every parser here gives
// jsontext.Check (the scan that refuses what encoding/json would let
// through), and a string encoder for the hot path.

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
