package analytics

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// Memory is a Store in this process: one instance's figures (memory mode),
// lost on restart. It holds at most the days Limits.Retention keeps, each
// with at most Limits.MaxTypes types (plus OtherType) of at most
// maxBucket+4 counters, and a bit per sequence number counted in the last
// day (dedupBlockBits to a 128 KiB block).
type Memory struct {
	limits Limits
	now    func() time.Time

	mu   sync.Mutex
	days map[Day]map[string]*Counts
	seen map[blockKey]*seenBlock
}

var _ Store = (*Memory)(nil)

// Sequence numbers are remembered in blocks of 2^20 bits, in memory as in
// Redis: a block is 128 KiB when full and covers a million notifications.
const (
	dedupBlockShift = 20
	dedupBlockBits  = 1 << dedupBlockShift
)

type blockKey struct {
	kind  byte // 's' sent, 'd' delivered
	block uint64
}

type seenBlock struct {
	bits []uint64
	used time.Time
}

// NewMemory returns an empty Memory store; zero limits take DefaultLimits.
func NewMemory(limits Limits) *Memory {
	return newMemory(limits, time.Now)
}

func newMemory(limits Limits, now func() time.Time) *Memory {
	return &Memory{
		limits: limits.orDefault(), now: now,
		days: make(map[Day]map[string]*Counts), seen: make(map[blockKey]*seenBlock),
	}
}

// Apply implements Store.
func (m *Memory) Apply(_ context.Context, b Batch) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget(now)
	for _, set := range []struct {
		kind  byte
		marks []Mark
		count func(*Counts)
	}{
		{'s', b.Sent, func(c *Counts) { c.Sent++ }},
		{'d', b.Delivered, func(c *Counts) { c.Delivered++ }},
	} {
		for _, mk := range set.marks {
			if !m.limits.kept(mk.Day, now) || !m.first(set.kind, mk.Seq, now) {
				continue
			}
			set.count(m.counts(mk.Day, mk.Type))
		}
	}
	for k, h := range b.Reads {
		if !m.limits.kept(k.Day, now) {
			continue
		}
		c := m.counts(k.Day, k.Type)
		for bucket, n := range h {
			c.Read += n
			c.ReadTimes[bucket] += n
		}
	}
	return nil
}

// first marks seq as counted for kind and says whether it was not yet.
func (m *Memory) first(kind byte, seq uint64, now time.Time) bool {
	k := blockKey{kind, seq >> dedupBlockShift}
	blk := m.seen[k]
	if blk == nil {
		blk = &seenBlock{bits: make([]uint64, dedupBlockBits/64)}
		m.seen[k] = blk
	}
	blk.used = now
	bit := seq & (dedupBlockBits - 1)
	word, mask := bit/64, uint64(1)<<(bit%64)
	if blk.bits[word]&mask != 0 {
		return false
	}
	blk.bits[word] |= mask
	return true
}

// counts is the figures of a day and type, typ becoming OtherType when the
// day has its Limits.MaxTypes already.
func (m *Memory) counts(d Day, typ string) *Counts {
	types := m.days[d]
	if types == nil {
		types = make(map[string]*Counts)
		m.days[d] = types
	}
	if c := types[typ]; c != nil {
		return c
	}
	if typ != OtherType {
		n := len(types)
		if _, ok := types[OtherType]; ok {
			n--
		}
		if n >= m.limits.MaxTypes {
			typ = OtherType
		}
	}
	c := types[typ]
	if c == nil {
		c = &Counts{ReadTimes: Histogram{}}
		types[typ] = c
	}
	return c
}

// forget drops the days no longer kept and the sequence numbers not
// reported for a day, as Redis's expiry does.
func (m *Memory) forget(now time.Time) {
	for d := range m.days {
		if !m.limits.kept(d, now) {
			delete(m.days, d)
		}
	}
	for k, blk := range m.seen {
		if now.Sub(blk.used) > dedupWindow {
			delete(m.seen, k)
		}
	}
}

// Query implements Store.
func (m *Memory) Query(_ context.Context, from, to Day, typ string) ([]Row, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var rows []Row
	for d := from; d <= to; d++ {
		if !m.limits.kept(d, now) {
			continue
		}
		for t, c := range m.days[d] {
			if typ != "" && t != typ {
				continue
			}
			rows = append(rows, Row{Key: Key{d, t}, Counts: Counts{
				Sent: c.Sent, Delivered: c.Delivered, Read: c.Read, ReadTimes: maps.Clone(c.ReadTimes),
			}})
		}
	}
	sortRows(rows)
	return rows, nil
}

func sortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		if c := cmp.Compare(a.Day, b.Day); c != 0 {
			return c
		}
		return cmp.Compare(a.Type, b.Type)
	})
}
