package main

import (
	"math"
	"slices"
	"time"
)

// tally records, for one connection, when each numbered message of the run
// arrived. Only the connection's reader writes it; the run reads it once
// every reader has ended, so it needs no lock.
type tally struct {
	// at is the receipt time of message n (nanoseconds since the run's
	// start); 0 means not received.
	at []int64
	// dup counts deliveries of a message already received.
	dup int
	// stray counts notifications of this run whose number is out of range.
	stray int
}

func newTally(messages int) tally { return tally{at: make([]int64, messages)} }

// record notes message n received at offset at, and says whether it is the
// first receipt of n.
func (t *tally) record(n int, at int64) bool {
	switch {
	case n < 0 || n >= len(t.at):
		t.stray++
		return false
	case t.at[n] != 0:
		t.dup++
		return false
	}
	t.at[n] = at
	return true
}

// latencies collects receipt-minus-send durations over many connections.
type latencies struct {
	samples []time.Duration
}

func (l *latencies) add(d time.Duration) { l.samples = append(l.samples, d) }

// summary is the spread of a set of durations, in milliseconds for the
// report.
type summary struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// summarize sorts the samples and reads the percentiles off them; with no
// samples every figure is zero.
func (l *latencies) summarize() summary {
	if len(l.samples) == 0 {
		return summary{}
	}
	slices.Sort(l.samples)
	return summary{
		P50: millis(percentile(l.samples, 50)),
		P95: millis(percentile(l.samples, 95)),
		P99: millis(percentile(l.samples, 99)),
		Max: millis(l.samples[len(l.samples)-1]),
	}
}

// percentile is the nearest-rank percentile p (0 < p <= 100) of sorted: the
// smallest sample with at least p% of the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps 0.95*100 = 95.00000000000001 at rank 95.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func millis(d time.Duration) float64 {
	// Three decimals are plenty and keep the JSON line short.
	return float64(d.Microseconds()) / 1000
}
