package instances

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

// counters is a fake metrics reading the test moves by hand.
type counters struct {
	mu sync.Mutex
	s  Sample
}

func (c *counters) sample() Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.LatencyCounts = append([]uint64(nil), c.s.LatencyCounts...)
	return s
}

func (c *counters) add(accepted, deliveries uint64, latency ...float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Accepted += accepted
	c.s.Deliveries += deliveries
	for _, l := range latency {
		for i, b := range c.s.LatencyBounds {
			if l <= b {
				c.s.LatencyCounts[i]++
			}
		}
		c.s.LatencyCounts[len(c.s.LatencyBounds)]++
	}
}

func TestSelfReportsTheLastMinute(t *testing.T) {
	is := is.New(t)
	c := &counters{s: Sample{
		Connections:   map[string]int{"sse": 2},
		LatencyBounds: []float64{0.001, 0.01, 0.1},
		LatencyCounts: make([]uint64, 4),
	}}
	s := NewSelf(NewMemory(time.Minute), SelfOptions{ID: "me", Version: "v", Sample: c.sample,
		Actions: func() map[string]Activity { return map[string]Activity{"send": {1, 2}} }})
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	r := s.observe(t0)
	is.Equal(r.PerSecond.Accepted, []float64{})
	is.Equal(r.Latency, Latency{})
	is.Equal(r.Connections, map[string]int{"sse": 2})

	// 100 deliveries in the first second: 50 in the first bucket, 50 in
	// the second; then 10 accepted per second with 2 s between samples.
	lat := make([]float64, 0, 100)
	for i := range 100 {
		lat = append(lat, []float64{0.0005, 0.005}[i%2])
	}
	c.add(4, 100, lat...)
	r = s.observe(t0.Add(time.Second))
	is.Equal(r.PerSecond.Accepted, []float64{4})
	is.Equal(r.PerSecond.Deliveries, []float64{100})
	is.Equal(r.Latency.Count, uint64(100))
	is.Equal(r.Latency.P50, 0.001)                           // the 50th sits at the top of the first bucket
	is.True(r.Latency.P99 > 0.0098 && r.Latency.P99 <= 0.01) // 49/50 of the way through the second
	is.Equal(r.Actions, map[string]Activity{"send": {1, 2}})

	c.add(20, 0)
	r = s.observe(t0.Add(3 * time.Second))
	is.Equal(r.PerSecond.Accepted, []float64{4, 10})
	is.Equal(r.Totals.Accepted, uint64(24))
	is.Equal(r.LastMinute, Counts{Accepted: 24, Deliveries: 100})

	// A minute later the first second has left the window: its
	// deliveries no longer count for latency.
	c.add(0, 1, 0.05)
	r = s.observe(t0.Add(62 * time.Second))
	is.Equal(r.Latency.Count, uint64(1))
	is.True(r.Latency.P50 > 0.01 && r.Latency.P50 <= 0.1)
	is.Equal(r.PerSecond.Accepted, []float64{10, 0}) // from the sample at 1 s, the newest a minute back
	is.Equal(r.LastMinute, Counts{Accepted: 20, Deliveries: 1})

	// Slow deliveries past the last bound report the last bound.
	c.add(0, 5, 7, 7, 7, 7, 7)
	r = s.observe(t0.Add(63 * time.Second))
	is.Equal(r.Latency.P99, 0.1)
}

func TestSelfRunBeatsAndLeaves(t *testing.T) {
	is := is.New(t)
	reg := NewMemory(time.Minute)
	c := &counters{s: Sample{Connections: map[string]int{}}}
	s := NewSelf(reg, SelfOptions{ID: "me", Heartbeat: 10 * time.Millisecond, Sample: c.sample})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rs, _ := reg.List(context.Background())
		if len(rs) == 1 && len(rs[0].PerSecond.Accepted) >= 2 {
			is.Equal(rs[0].ID, "me")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no report with two points")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	is.NoErr(<-done)
	rs, _ := reg.List(context.Background())
	is.Equal(len(rs), 0) // left on stop
}
