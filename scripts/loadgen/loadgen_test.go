package main

import (
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestPercentile(t *testing.T) {
	is := is.New(t)
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{[]time.Duration{7}, 99, 7},
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 95, 95 * time.Millisecond}, // not 96: 0.95*100 is not quite 95 in floating point
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 100, 100 * time.Millisecond},
		{hundred, 0.1, time.Millisecond},
		{[]time.Duration{1, 2, 3}, 50, 2},
	} {
		is.Equal(percentile(tc.sorted, tc.p), tc.want) // percentile(n=len, p)
	}
}

func TestSummarizeSortsAndReadsMilliseconds(t *testing.T) {
	is := is.New(t)
	l := latencies{samples: []time.Duration{3 * time.Millisecond, time.Millisecond, 1500 * time.Microsecond, 2 * time.Millisecond}}
	s := l.summarize()
	is.Equal(s, summary{P50: 1.5, P95: 3, P99: 3, Max: 3})
	is.Equal((&latencies{}).summarize(), summary{})
}

func TestTallyCountsDuplicatesAndStrays(t *testing.T) {
	is := is.New(t)
	tl := newTally(3)
	is.True(tl.record(0, 10))
	is.True(tl.record(2, 20))
	is.True(!tl.record(0, 30)) // a duplicate keeps the first receipt
	is.True(!tl.record(3, 40)) // out of range
	is.True(!tl.record(-1, 40))
	is.Equal(tl.at, []int64{10, 0, 20})
	is.Equal(tl.dup, 1)
	is.Equal(tl.stray, 2)
}

func TestSSEReader(t *testing.T) {
	is := is.New(t)
	stream := "retry: 2000\nevent: ready\nid: e-0\ndata: {\"event\":\"ready\"}\n\n" +
		": heartbeat\n\n" + // a comment and a blank line: no event
		"id: e-1\r\ndata: {\"n\":1}\r\n\r\n" + // CRLF
		"data:first\ndata: second\n\n" + // no space after the colon; two data lines
		"event: lonely\n\n" + // no data: dropped, and its name does not leak into the next event
		"data: " + strings.Repeat("x", 100) + "\n\n" // longer than the reader's buffer
	r := newSSEReader(strings.NewReader(stream), 16)
	type event struct{ name, id, data string }
	next := func() event {
		t.Helper()
		ev, err := r.next()
		is.NoErr(err)
		return event{string(ev.name), string(ev.id), string(ev.data)}
	}
	is.Equal(next(), event{"ready", "e-0", `{"event":"ready"}`})
	is.Equal(next(), event{"", "e-1", `{"n":1}`})
	is.Equal(next(), event{"", "", "first\nsecond"})
	is.Equal(next(), event{"", "", strings.Repeat("x", 100)})
	_, err := r.next()
	is.True(err != nil) // the stream ended
}

func TestMessageNumber(t *testing.T) {
	is := is.New(t)
	marker := newReceiver("ab12cd", time.Now()).marker
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
		n, ok := messageNumber([]byte(tc.frame), marker)
		is.Equal(ok, tc.ok) // frame parsed as expected
		if ok {
			is.Equal(n, tc.n)
		}
	}
}

func TestParseCPUTicks(t *testing.T) {
	is := is.New(t)
	// The command name may hold spaces and parentheses.
	stat := "4242 (notif (x) svc) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 9 0 100 1000000 500 18446744073709551615"
	ticks, err := parseCPUTicks([]byte(stat))
	is.NoErr(err)
	is.Equal(ticks, int64(175))
	_, err = parseCPUTicks([]byte("garbage"))
	is.True(err != nil)
}
