package instances

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is the Registry of one process: in memory mode the one instance,
// which lapses like any other when it stops beating.
type Memory struct {
	lapse time.Duration
	now   func() time.Time

	mu   sync.Mutex
	live map[string]entry
}

var _ Registry = (*Memory)(nil)

type entry struct {
	report   Report
	deadline time.Time
}

// NewMemory returns an empty registry whose instances lapse after lapse
// without a Beat.
func NewMemory(lapse time.Duration) *Memory {
	return &Memory{lapse: lapse, now: time.Now, live: make(map[string]entry)}
}

// Beat implements Registry.
func (m *Memory) Beat(_ context.Context, r Report) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live[r.ID] = entry{r, m.now().Add(m.lapse)}
	return nil
}

// Leave implements Registry.
func (m *Memory) Leave(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.live, id)
	return nil
}

// List implements Registry.
func (m *Memory) List(context.Context) ([]Report, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Report, 0, len(m.live))
	for id, e := range m.live {
		if now.After(e.deadline) {
			delete(m.live, id)
			continue
		}
		out = append(out, e.report)
	}
	sortReports(out)
	return out, nil
}

func sortReports(rs []Report) {
	slices.SortFunc(rs, func(a, b Report) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
