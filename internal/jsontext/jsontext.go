// Package jsontext checks raw JSON text, before it is decoded, for what
// encoding/json lets through silently or what costs to hold: invalid
// UTF-8, \u escapes of unpaired UTF-16 surrogates, and deep nesting. Every
// parser of untrusted JSON in the service (REST bodies and WebSocket
// frames, the Pusher HTTP API and protocol, Laravel's broadcasts) runs it
// first and words the refusal in its own protocol's terms.
//
// It owns no decoding: malformed JSON is left to the decoder, which names
// the error; this scan only has to be right about what is inside and
// outside strings.
package jsontext

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrNotUTF8 means the text is not valid UTF-8. Decoding a string would
// turn the bad bytes into U+FFFD, and a relayed json.RawMessage would carry
// them to browsers as they are.
var ErrNotUTF8 = errors.New("is not valid UTF-8")

// SurrogateError is a \u escape of a UTF-16 surrogate that is not a high
// half immediately followed by an escaped low half ("\ud800"): decoded as
// U+FFFD too, and a broken string for JavaScript when relayed as is.
type SurrogateError struct {
	Offset int // of the escape's backslash
}

func (e *SurrogateError) Error() string {
	return fmt.Sprintf("has an unpaired UTF-16 surrogate escape at byte %d", e.Offset)
}

// DepthError is nesting deeper than the bound: encoding/json allows 10,000
// levels, and each level costs every reader that parses the text again.
type DepthError struct {
	Max int
}

func (e *DepthError) Error() string { return fmt.Sprintf("nests deeper than %d levels", e.Max) }

// Check scans b once, without recursion, and returns ErrNotUTF8, a
// *SurrogateError or a *DepthError (the outermost object or array being
// level 1), or nil.
func Check(b []byte, maxDepth int) error {
	if !utf8.Valid(b) {
		return ErrNotUTF8
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
					return &SurrogateError{Offset: i}
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
				return &DepthError{Max: maxDepth}
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

// hexEscape reads a \uXXXX escape at b[i].
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
