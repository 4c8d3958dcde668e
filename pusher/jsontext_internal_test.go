package pusher

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/matryer/is"
)

func TestAppendJSONStringRoundTrips(t *testing.T) {
	for _, s := range []string{
		"", "plain", `"quoted"`, `back\slash`, `\"`, "</script><script>alert(1)</script>",
		"line\nbreak\r\ttab\b\f", "\x00\x01\x1f\x7f", "unicode: é ü 日本語 🎉", "\u2028\u2029",
		`{"some":"data"}`, `{"nested":"{\"a\":\"b\\\"c\"}"}`, "[]", "a&b<c>d", strings.Repeat("x", 1000),
	} {
		is := is.New(t)
		for _, enc := range [][]byte{appendJSONString(nil, s), appendJSONString([]byte("prefix"), []byte(s))[len("prefix"):]} {
			is.True(json.Valid(enc))
			var back string
			is.NoErr(json.Unmarshal(enc, &back))
			is.Equal(back, s)
		}
	}
}

func TestAppendJSONStringEscapes(t *testing.T) {
	is := is.New(t)
	for in, want := range map[string]string{
		`a"b`:                 `"a\"b"`,
		`a\b`:                 `"a\\b"`,
		"a\nb\rc\td":          `"a\nb\rc\td"`,
		"\x00\x1f":            `"\u0000\u001f"`,
		"\u2028x\u2029":       `"\u2028x\u2029"`,
		"</script>":           `"</script>"`, // valid JSON as is; a WebSocket frame is not HTML
		"é🎉":                  `"é🎉"`,
		"bad\xffbyte":         `"bad\ufffdbyte"`,
		"cut\xe6\x97":         `"cut\ufffd\ufffd"`,
		"\xed\xa0\x80 (CESU)": `"\ufffd\ufffd\ufffd (CESU)"`,
	} {
		got := string(appendJSONString(nil, in))
		is.Equal(got, want)
		is.True(utf8.ValidString(got))
		is.True(json.Valid([]byte(got)))
	}
}
