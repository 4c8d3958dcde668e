// Package latency summarises delivery latencies for the load tools'
// reports: nearest-rank percentiles in milliseconds. It does not measure
// anything itself.
package latency

import (
	"math"
	"slices"
	"time"
)

// Summary is the spread of a set of durations, in milliseconds.
type Summary struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Summarize sorts samples in place and reads the percentiles off them;
// with no samples every figure is zero.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	return Summary{
		P50: Millis(Percentile(samples, 50)),
		P95: Millis(Percentile(samples, 95)),
		P99: Millis(Percentile(samples, 99)),
		Max: Millis(samples[len(samples)-1]),
	}
}

// Percentile is the nearest-rank percentile p (0 < p <= 100) of sorted: the
// smallest sample with at least p% of the samples at or below it.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps 0.95*100 = 95.00000000000001 at rank 95.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Millis is d in milliseconds with three decimals: plenty, and it keeps
// JSON lines short.
func Millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
