package jsontext

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	const maxDepth = 8
	var notUTF8 error = ErrNotUTF8
	surrogate := func(at int) error { return &SurrogateError{Offset: at} }
	deep := &DepthError{Max: maxDepth}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`{"a":"b"}`, nil},
		{`{"a":"\ud83c\udf89"}`, nil},                         // a surrogate pair
		{`{"a":"\uD83C\uDF89"}`, nil},                         // upper-case hex
		{`{"a":"\u00e9\\ud800"}`, nil},                        // an escaped backslash, then text
		{`{"a":"\"\\\/\b\f\n\r\t"}`, nil},                     // every two-byte escape
		{`{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`, nil}, // brackets in a string do not nest
		{`{"a":"\ud800"}`, surrogate(6)},
		{`{"a":"x\udc00\ud800"}`, surrogate(7)}, // a low half first
		{`{"a":"\ud800\u0041"}`, surrogate(6)},  // a high half, then no low half
		{`{"a":"\ud800\ud800"}`, surrogate(6)},  // two high halves
		{`{"a":"\ud800x\udc00"}`, surrogate(6)}, // the halves apart
		{`{"a":"\ud800"`, surrogate(6)},         // cut short: still unpaired
		{"{\"a\":\"\xff\"}", notUTF8},           // a bad byte
		{"{\"a\":\"\xed\xa0\x80\"}", notUTF8},   // a surrogate encoded in UTF-8 (CESU)
		{strings.Repeat("[", 9) + strings.Repeat("]", 9), deep},
		{strings.Repeat("[", 8) + strings.Repeat("]", 8), nil},
		{`{"a":` + strings.Repeat(`{"b":`, 8) + `1` + strings.Repeat("}", 9), deep},
		{strings.Repeat("[", 100000), deep}, // no recursion, however deep
		{`{"a":"\u12"}`, nil},               // malformed: left to the decoder
	} {
		err := Check([]byte(tc.in), maxDepth)
		switch want := tc.want.(type) {
		case nil:
			if err != nil {
				t.Errorf("Check(%.40q) = %v, want nil", tc.in, err)
			}
		case *SurrogateError:
			var got *SurrogateError
			if !errors.As(err, &got) || *got != *want {
				t.Errorf("Check(%.40q) = %v, want %v", tc.in, err, want)
			}
		case *DepthError:
			var got *DepthError
			if !errors.As(err, &got) || *got != *want {
				t.Errorf("Check(%.40q) = %v, want %v", tc.in, err, want)
			}
		default:
			if !errors.Is(err, want) {
				t.Errorf("Check(%.40q) = %v, want %v", tc.in, err, want)
			}
		}
	}
}
