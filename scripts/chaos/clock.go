package main

import "time"

// clock reads time as offsets from the run's start, in nanoseconds
// (monotonic): every timestamp of a run (sends, receipts, faults) is one
// of these, so they compare without wall-clock jumps.
type clock struct{ start time.Time }

func (c clock) now() int64 { return int64(time.Since(c.start)) }

func (c clock) seconds(at int64) float64 { return round(time.Duration(at).Seconds(), 3) }

func round(v float64, decimals int) float64 {
	p := 1.0
	for range decimals {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}
