package main

import (
	"time"

	"notification-service/scripts/internal/latency"
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

// summarize sorts the samples and reads the percentiles off them; with no
// samples every figure is zero.
func (l *latencies) summarize() latency.Summary { return latency.Summarize(l.samples) }
