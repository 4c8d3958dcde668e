package instances

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"
)

// testLapse is the tests' lapse: short, and far enough above the time a
// Beat takes on a loaded machine.
const testLapse = 400 * time.Millisecond

// testRegistry checks the behaviour every Registry shares. newRegistry
// returns an empty registry whose instances lapse after lapse.
func testRegistry(t *testing.T, newRegistry func(t *testing.T, lapse time.Duration) Registry) {
	t.Helper()
	ctx := context.Background()
	started := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	report := func(id string, startedAfter time.Duration, conns int) Report {
		return Report{ID: id, Version: "v1", Started: started.Add(startedAfter), At: time.Now().UTC().Truncate(time.Millisecond),
			Connections: map[string]int{"sse": conns, "ws": 1},
			Totals:      Totals{Accepted: 3, Deliveries: 9},
			PerSecond:   Series{Accepted: []float64{1, 2}, Deliveries: []float64{3, 6}},
			LastMinute:  Counts{Accepted: 3, Deliveries: 9},
			Latency:     Latency{P50: 0.001, P99: 0.02, Count: 9},
			Actions:     map[string]Activity{"send": {LastSecond: 1, LastMinute: 3}},
		}
	}
	list := func(t *testing.T, r Registry) []Report {
		t.Helper()
		rs, err := r.List(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		return rs
	}

	t.Run("instances are listed with their latest report, by start", func(t *testing.T) {
		is := is.New(t)
		r := newRegistry(t, time.Minute)
		is.Equal(len(list(t, r)), 0)
		b, a := report("b", 0, 1), report("a", time.Second, 2)
		is.NoErr(r.Beat(ctx, a))
		is.NoErr(r.Beat(ctx, b))
		is.Equal(list(t, r), []Report{b, a}) // b started first
		b2 := report("b", 0, 5)
		is.NoErr(r.Beat(ctx, b2))
		is.Equal(list(t, r), []Report{b2, a})
		is.NoErr(r.Leave(ctx, "b"))
		is.Equal(list(t, r), []Report{a}) // at once
		is.NoErr(r.Leave(ctx, "nobody"))
	})

	t.Run("an instance that stops beating leaves within the lapse", func(t *testing.T) {
		is := is.New(t)
		r := newRegistry(t, testLapse)
		beforeBeat := time.Now() // the lapse starts while Beat runs
		is.NoErr(r.Beat(ctx, report("dead", 0, 1)))
		beat := time.Now()
		live := report("live", time.Second, 1)
		for {
			is.NoErr(r.Beat(ctx, live))
			rs := list(t, r)
			if len(rs) == 1 {
				is.Equal(rs[0].ID, "live")
				break
			}
			if time.Since(beat) > testLapse+200*time.Millisecond {
				t.Fatalf("the dead instance is still listed %v after its last beat (lapse %v)", time.Since(beat), testLapse)
			}
			time.Sleep(20 * time.Millisecond) // the live one's heartbeat
		}
		is.True(time.Since(beforeBeat) >= testLapse) // not before its lapse
	})
}

func TestMemory(t *testing.T) {
	testRegistry(t, func(t *testing.T, lapse time.Duration) Registry { return NewMemory(lapse) })
}
