package audit

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TrailStore keeps the latest sampled events of every instance, for the
// dashboard to read. Implementations are safe for concurrent use and share
// trail_contract_test.go.
//
// Event IDs are "<milliseconds>-<sequence>", like Redis stream IDs, and
// grow with every event added.
//
// A store shared by instances (Redis) fails with an error wrapping
// store.ErrUnavailable while it cannot be reached.
type TrailStore interface {
	// Add appends events, giving each its ID; the store keeps about its
	// capacity of the latest events and forgets older ones.
	Add(ctx context.Context, events []Event) error
	// Latest returns, newest first, at most limit of the kept events that
	// match f and are newer than after ("": any), looking at no more
	// than the store's capacity. after must be an ID (ValidID) or "".
	Latest(ctx context.Context, after string, f Filter, limit int) ([]Event, error)
}

// DefaultTrailCapacity is how many events a store keeps by default.
const DefaultTrailCapacity = 1000

// ErrBadID means an after ID is not an event ID.
var ErrBadID = errors.New("audit: malformed event id")

// ValidID says whether s has the form of an event ID.
func ValidID(s string) bool {
	_, _, err := parseID(s)
	return err == nil
}

func parseID(s string) (ms, seq uint64, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok || len(s) > 41 {
		return 0, 0, ErrBadID
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, ErrBadID
	}
	return ms, seq, nil
}

// IDAfter says whether event ID a comes after event ID b: the order of the
// trail, by milliseconds then sequence (not the strings' order: "10-0"
// comes after "9-0"). Every ID comes after "" (and after anything that is
// not an ID, ValidID); what is not an ID comes after nothing.
func IDAfter(a, b string) bool {
	am, as, err := parseID(a)
	if err != nil {
		return false
	}
	bm, bs, err := parseID(b)
	if err != nil {
		return true
	}
	return am > bm || am == bm && as > bs
}

// MemoryTrail is a TrailStore in this process: a ring of the latest events.
type MemoryTrail struct {
	mu     sync.Mutex
	ring   []Event
	next   int // where the next event goes
	full   bool
	lastMS uint64
	seq    uint64
}

var _ TrailStore = (*MemoryTrail)(nil)

// NewMemoryTrail returns an empty store keeping capacity events (0: the
// default).
func NewMemoryTrail(capacity int) *MemoryTrail {
	if capacity <= 0 {
		capacity = DefaultTrailCapacity
	}
	return &MemoryTrail{ring: make([]Event, capacity)}
}

// Add implements TrailStore.
func (m *MemoryTrail) Add(_ context.Context, events []Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		ms := uint64(time.Now().UnixMilli())
		if ms <= m.lastMS {
			ms, m.seq = m.lastMS, m.seq+1
		} else {
			m.seq = 0
		}
		m.lastMS = ms
		e.ID = strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(m.seq, 10)
		m.ring[m.next] = e
		m.next = (m.next + 1) % len(m.ring)
		m.full = m.full || m.next == 0
	}
	return nil
}

// Latest implements TrailStore.
func (m *MemoryTrail) Latest(_ context.Context, after string, f Filter, limit int) ([]Event, error) {
	if after != "" && !ValidID(after) {
		return nil, ErrBadID
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.next
	if m.full {
		n = len(m.ring)
	}
	var out []Event
	for i := 1; i <= n && len(out) < limit; i++ {
		e := m.ring[(m.next-i+len(m.ring))%len(m.ring)]
		if after != "" && !IDAfter(e.ID, after) {
			break
		}
		if f.Matches(e) {
			out = append(out, e)
		}
	}
	return out, nil
}
