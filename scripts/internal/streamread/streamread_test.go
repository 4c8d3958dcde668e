package streamread

import (
	"strings"
	"testing"

	"github.com/matryer/is"
)

func TestSSEReader(t *testing.T) {
	is := is.New(t)
	stream := "retry: 2000\nevent: ready\nid: e-0\ndata: {\"event\":\"ready\"}\n\n" +
		": heartbeat\n\n" + // a comment and a blank line: no event
		"id: e-1\r\ndata: {\"n\":1}\r\n\r\n" + // CRLF
		"data:first\ndata: second\n\n" + // no space after the colon; two data lines
		"event: lonely\n\n" + // no data: dropped, and its name does not leak into the next event
		"data: " + strings.Repeat("x", 100) + "\n\n" // longer than the reader's buffer
	r := NewSSEReader(strings.NewReader(stream), 16)
	type event struct{ name, id, data string }
	next := func() event {
		t.Helper()
		ev, err := r.Next()
		is.NoErr(err)
		return event{string(ev.Name), string(ev.ID), string(ev.Data)}
	}
	is.Equal(next(), event{"ready", "e-0", `{"event":"ready"}`})
	is.Equal(next(), event{"", "e-1", `{"n":1}`})
	is.Equal(next(), event{"", "", "first\nsecond"})
	is.Equal(next(), event{"", "", strings.Repeat("x", 100)})
	_, err := r.Next()
	is.True(err != nil) // the stream ended
}

func TestNumberAfter(t *testing.T) {
	is := is.New(t)
	marker := []byte(`"title":"lg-ab12cd-`)
	for _, tc := range []struct {
		frame string
		n     int
		ok    bool
	}{
		{`{"event":"notification","cursor":"x-1","id":"i","type":"loadgen","title":"lg-ab12cd-42","message":"m"}`, 42, true},
		{`{"title":"lg-ab12cd-0"}`, 0, true},
		{`{"title":"lg-ffffff-42"}`, 0, false}, // another run
		{`{"title":"lg-ab12cd-"}`, 0, false},
		{`{"title":"lg-ab12cd-4x"}`, 0, false},
		{`{"title":"lg-ab12cd-42`, 0, false}, // cut short
		{`{"title":"lg-ab12cd-12345678901"}`, 0, false},
	} {
		n, ok := NumberAfter([]byte(tc.frame), marker)
		is.Equal(ok, tc.ok) // frame parsed as expected
		if ok {
			is.Equal(n, tc.n)
		}
	}
}

func TestStringAfter(t *testing.T) {
	is := is.New(t)
	marker := []byte(`"cursor":"`)
	v, ok := StringAfter([]byte(`{"event":"notification","cursor":"e1-42","id":"x"}`), marker)
	is.True(ok)
	is.Equal(string(v), "e1-42")
	_, ok = StringAfter([]byte(`{"event":"ready"}`), marker)
	is.True(!ok) // no such field
	_, ok = StringAfter([]byte(`{"cursor":"e1-4`), marker)
	is.True(!ok) // cut short
}
