package analytics

import (
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestMedianError: for any time to read from a second to a year, the
// reported median of reads all that long is within MedianError.
func TestMedianError(t *testing.T) {
	is := is.New(t)
	is.True(MedianError < 0.045)
	for d := time.Second; d < 366*24*time.Hour; d = d*21/20 + time.Millisecond {
		h := Histogram{bucketOf(d): 3}
		got, ok := h.median()
		is.True(ok)
		if !within(got, d, MedianError) {
			t.Fatalf("median of %v reported as %v: off by more than %.1f%%", d, got, 100*MedianError)
		}
	}
	// Under a second: half a second, off by at most that.
	got, _ := Histogram{bucketOf(10 * time.Millisecond): 1}.median()
	is.Equal(got, 500*time.Millisecond)
	// Negative times (a clock ahead of another) count as immediate.
	is.Equal(bucketOf(-time.Minute), 0)
}

func TestMedianIsTheLowerMiddleRead(t *testing.T) {
	is := is.New(t)
	h := Histogram{}
	for _, d := range []time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour} {
		h[bucketOf(d)]++
	}
	got, _ := h.median()
	is.Equal(got, bucketMiddle(bucketOf(time.Minute)))
}

func TestDays(t *testing.T) {
	is := is.New(t)
	d, err := ParseDay("2026-11-27")
	is.NoErr(err)
	is.Equal(d.String(), "2026-11-27")
	is.Equal(DayOf(time.Date(2026, 11, 27, 23, 59, 59, 0, time.UTC)), d)
	is.Equal(DayOf(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)), d+1)
	is.Equal(DayOf(time.Date(2026, 11, 28, 0, 30, 0, 0, time.FixedZone("x", 3600))), d) // UTC decides
	is.Equal(DayOf(time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)), Day(-1))
	for _, bad := range []string{"", "2026-2-1", "2026-02-30", "27/11/2026", "2026-11-27T00:00:00Z"} {
		_, err := ParseDay(bad)
		is.True(err != nil)
	}
}
