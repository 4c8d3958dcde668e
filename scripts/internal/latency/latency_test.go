package latency

import (
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
		is.Equal(Percentile(tc.sorted, tc.p), tc.want) // Percentile(n=len, p)
	}
}

func TestSummarizeSortsAndReadsMilliseconds(t *testing.T) {
	is := is.New(t)
	s := Summarize([]time.Duration{3 * time.Millisecond, time.Millisecond, 1500 * time.Microsecond, 2 * time.Millisecond})
	is.Equal(s, Summary{P50: 1.5, P95: 3, P99: 3, Max: 3})
	is.Equal(Summarize(nil), Summary{})
}
