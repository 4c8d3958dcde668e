package schedule

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"notification-service/broker"
)

// Memory is a Scheduler that keeps pending items in the process: they are
// lost when it exits. It suits a single instance and tests.
//
// Pending items sit in a min-heap by due time with one timer, owned by Run,
// armed for the earliest of them; Add and Cancel wake Run when the earliest
// changes so it re-arms. Memory is safe for concurrent use.
type Memory struct {
	logger *slog.Logger
	// wake tells Run the earliest item changed. Its capacity of one makes
	// the send non-blocking and coalesces bursts: Run re-reads the heap on
	// every wake, so one pending token covers any number of changes.
	wake chan struct{}

	mu      sync.Mutex
	pending entryHeap
	byID    map[string]*entry
	// firing holds the ids claimed by Run and not yet settled, so an Add
	// cannot reuse one while its retry may still put it back.
	firing map[string]struct{}
}

var _ Scheduler = (*Memory)(nil)

// NewMemory returns an empty Memory. Fire failures are logged to logger; a
// nil logger discards them.
func NewMemory(logger *slog.Logger) *Memory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Memory{
		logger: logger,
		wake:   make(chan struct{}, 1),
		byID:   make(map[string]*entry),
		firing: make(map[string]struct{}),
	}
}

// Add stores a copy of it.
func (m *Memory) Add(ctx context.Context, it Item) error {
	m.mu.Lock()
	_, pending := m.byID[it.ID]
	_, firing := m.firing[it.ID]
	if pending || firing {
		m.mu.Unlock()
		return fmt.Errorf("schedule: add %s: %w", it.ID, ErrDuplicate)
	}
	earliest := m.push(cloneItem(it), it.ScheduledAt)
	m.mu.Unlock()
	if earliest {
		m.signal()
	}
	return nil
}

// Get returns a copy of a pending item.
func (m *Memory) Get(ctx context.Context, id string) (Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byID[id]
	if !ok {
		return Item{}, fmt.Errorf("schedule: get %s: %w", id, ErrNotFound)
	}
	return cloneItem(e.item), nil
}

// List returns copies of the pending items, earliest ScheduledAt first.
func (m *Memory) List(ctx context.Context, userID string) ([]Item, error) {
	m.mu.Lock()
	var items []Item
	for _, e := range m.byID {
		if userID == "" || slices.Contains(e.item.UserIDs(), userID) {
			items = append(items, cloneItem(e.item))
		}
	}
	m.mu.Unlock()
	slices.SortFunc(items, compareItems)
	return items, nil
}

// Pending counts the items waiting for their time (not those being fired),
// for the metrics' scrape.
func (m *Memory) Pending(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID), nil
}

// Cancel removes a pending item and returns it.
func (m *Memory) Cancel(ctx context.Context, id string) (Item, error) {
	m.mu.Lock()
	e, ok := m.byID[id]
	if !ok {
		m.mu.Unlock()
		return Item{}, fmt.Errorf("schedule: cancel %s: %w", id, ErrNotFound)
	}
	wasEarliest := e.index == 0
	heap.Remove(&m.pending, e.index)
	delete(m.byID, id)
	m.mu.Unlock()
	if wasEarliest {
		m.signal()
	}
	return e.item, nil
}

// Run fires due items in due order until ctx is done. Items still pending
// then stay pending, including any it had claimed but not yet fired.
func (m *Memory) Run(ctx context.Context, fire FireFunc) error {
	// Go 1.23 timers: Stop and Reset never leave a stale tick in timer.C,
	// so the timer can be re-armed at will without draining it.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next, ok := m.claimDue(time.Now())
		for i, it := range due {
			if ctx.Err() != nil {
				m.unclaim(due[i:])
				return nil
			}
			// fire gets its own copy: it may stamp the notifications, and
			// a retry must start from the item as it was added.
			if err := fire(ctx, cloneItem(it)); err != nil {
				m.retry(ctx, it, err)
				continue
			}
			m.settle(it.ID)
		}
		if len(due) > 0 {
			// Firing took time: more items may be due already.
			continue
		}
		if ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// claimDue pops every item due at now, in due order, and hides it from Get,
// List and Cancel: from here on the item belongs to Run. It also reports the
// due time of the earliest item left.
func (m *Memory) claimDue(now time.Time) (due []Item, next time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.pending) > 0 && !m.pending[0].due.After(now) {
		e := heap.Pop(&m.pending).(*entry)
		delete(m.byID, e.item.ID)
		m.firing[e.item.ID] = struct{}{}
		due = append(due, e.item)
	}
	if len(m.pending) == 0 {
		return due, time.Time{}, false
	}
	return due, m.pending[0].due, true
}

// retry puts a failed item back, visible again, to be fired after
// retryDelay. Its ScheduledAt stays what the caller asked for.
func (m *Memory) retry(ctx context.Context, it Item, err error) {
	at := time.Now().Add(retryDelay)
	m.logger.LogAttrs(ctx, slog.LevelError, "schedule: fire failed, will retry",
		slog.String("id", it.ID),
		slog.Time("scheduled_at", it.ScheduledAt),
		slog.Time("retry_at", at),
		slog.Any("error", err),
	)
	m.mu.Lock()
	delete(m.firing, it.ID)
	m.push(it, at)
	m.mu.Unlock()
	// No signal: only Run calls retry, and it reads the heap next.
}

// unclaim returns claimed items that were never fired, due as before.
func (m *Memory) unclaim(items []Item) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, it := range items {
		delete(m.firing, it.ID)
		m.push(it, it.ScheduledAt)
	}
}

// settle forgets a delivered item.
func (m *Memory) settle(id string) {
	m.mu.Lock()
	delete(m.firing, id)
	m.mu.Unlock()
}

// push adds an item due at due and reports whether it is now the earliest.
// The caller holds m.mu.
func (m *Memory) push(it Item, due time.Time) bool {
	e := &entry{item: it, due: due}
	heap.Push(&m.pending, e)
	m.byID[it.ID] = e
	return e.index == 0
}

func (m *Memory) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// entry is a pending item with its place in the heap. due is when it fires
// next: its ScheduledAt, or the retry time after a failed fire.
type entry struct {
	item  Item
	due   time.Time
	index int
}

// entryHeap orders entries by due time, then as compareItems does, so items
// due together fire in a stable order.
type entryHeap []*entry

func (h entryHeap) Len() int { return len(h) }

func (h entryHeap) Less(i, j int) bool {
	if c := h[i].due.Compare(h[j].due); c != 0 {
		return c < 0
	}
	return compareItems(h[i].item, h[j].item) < 0
}

func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *entryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.index = -1
	*h = old[:n-1]
	return e
}

// cloneItem copies it deeply enough that neither the caller nor the
// scheduler can change the other's notifications.
func cloneItem(it Item) Item {
	if it.Notifications == nil {
		return it
	}
	ns := make([]broker.Notification, len(it.Notifications))
	for i, n := range it.Notifications {
		n.Channels = slices.Clone(n.Channels)
		n.Data = slices.Clone(n.Data)
		ns[i] = n
	}
	it.Notifications = ns
	return it
}
