package main

import (
	"context"
	"os"
	"slices"
	"sync"
	"time"

	"notification-service/scripts/internal/proc"
)

// monitorEvery is how often the monitor looks at every client.
const monitorEvery = 100 * time.Millisecond

// monitor watches the fleet: how many clients are live (sampled for the
// timeline and the fault windows), and when all of them are live and have
// received everything accepted up to a point (catch-up waits). One
// goroutine, owned by the run.
type monitor struct {
	clock
	fleet  *fleet
	ledger *ledger
	sender *sender
	// pids names the processes whose CPU the timeline shows.
	pids func() map[string]int
	cpu  cpuMeter

	mu      sync.Mutex
	samples []sample
	ticks   []tick
	marks   []mark
	waits   []*catchUp
}

// sample is the fleet at one moment.
type sample struct {
	at   int64
	live int
}

// tick is one line of the timeline in the result, once a second.
type tick struct {
	T        float64            `json:"t"`
	Live     int                `json:"live"`
	Per      [instanceCount]int `json:"live_per_instance"`
	Accepted int32              `json:"accepted"`
	Pending  int                `json:"sends_pending"`
	Load1    float64            `json:"load1"`
	// OpenFiles is how many descriptors this program held at the tick:
	// the clients' sockets, both sides of the proxy's, the sends'.
	OpenFiles int `json:"open_files"`
	// CPU is, for redis, A, B, C and chaos (this program), the percent of
	// one core each ran over the last second, and the percent its threads
	// waited for a CPU while runnable.
	CPU map[string]cpuShare `json:"cpu_pct"`
}

// mark is a moment of the run worth seeing beside the timeline (a fault
// injected, an instance back).
type mark struct {
	T    float64 `json:"t"`
	Text string  `json:"what"`
}

// catchUp is a wait for every client to be live and to hold every send
// among the first through acceptances.
type catchUp struct {
	through int32
	at      int64
	done    chan struct{}
}

func (m *monitor) run(ctx context.Context) {
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.look(n%10 == 0)
	}
}

func (m *monitor) look(withTick bool) {
	now := m.now()
	live, per := m.fleet.live()
	m.mu.Lock()
	m.samples = append(m.samples, sample{at: now, live: live})
	waits := slices.Clone(m.waits)
	m.mu.Unlock()
	if withTick {
		t := tick{T: m.seconds(now), Live: live, Per: per, Accepted: m.ledger.acceptedSoFar(), Load1: proc.LoadAverage()[0], CPU: m.cpu.sample(m.pids())}
		t.OpenFiles, _ = proc.OpenFiles(os.Getpid())
		if m.sender != nil {
			t.Pending = m.sender.pending()
		}
		m.mu.Lock()
		m.ticks = append(m.ticks, t)
		m.mu.Unlock()
	}
	if live < len(m.fleet.clients) {
		return
	}
	for _, w := range waits {
		if w.at >= 0 || !m.allCaughtUp(w.through) {
			continue
		}
		w.at = now
		close(w.done)
	}
}

func (m *monitor) allCaughtUp(through int32) bool {
	for _, c := range m.fleet.clients {
		if !c.caughtUp(through) {
			return false
		}
	}
	return true
}

// waitCaughtUp waits until every client is live and holds every send among
// the first through acceptances, and returns that moment; ok is false when
// within passed first.
func (m *monitor) waitCaughtUp(ctx context.Context, through int32, within time.Duration) (at int64, ok bool) {
	w := &catchUp{through: through, at: -1, done: make(chan struct{})}
	m.mu.Lock()
	m.waits = append(m.waits, w)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		for i, x := range m.waits {
			if x == w {
				m.waits = append(m.waits[:i], m.waits[i+1:]...)
				break
			}
		}
		m.mu.Unlock()
	}()
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-w.done:
		return w.at, true
	case <-t.C:
	case <-ctx.Done():
	}
	return -1, false
}

// between is the samples in [from, to].
func (m *monitor) between(from, to int64) []sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []sample
	for _, s := range m.samples {
		if s.at >= from && s.at <= to {
			out = append(out, s)
		}
	}
	return out
}

// mark notes a moment of the run for the timeline.
func (m *monitor) mark(text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.marks = append(m.marks, mark{T: m.seconds(m.now()), Text: text})
}
