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
// changes so it re-arms. Indexes in listing order (memory_index.go) serve
// List and count a user's items for Limits. Memory is safe for concurrent
// use.
type Memory struct {
	logger *slog.Logger
	limits Limits
	// wake tells Run the earliest item changed. Its capacity of one makes
	// the send non-blocking and coalesces bursts: Run re-reads the heap on
	// every wake, so one pending token covers any number of changes.
	wake chan struct{}

	mu      sync.Mutex
	pending entryHeap
	byID    map[string]*entry
	// firing holds the items claimed by Run and not yet settled, so an Add
	// cannot reuse an id while its retry may still put it back.
	firing map[string]Item
	// pendingAt places the pending items in listing order: the index of
	// an unfiltered listing.
	pendingAt places
	// byUser places each user's items, pending or being fired: what
	// Limits.PerUser counts, and the index of a listing by user.
	byUser map[string]*places
}

var _ Scheduler = (*Memory)(nil)

// NewMemory returns an empty Memory holding at most what limits allow.
// Fire failures are logged to logger; a nil logger discards them.
func NewMemory(logger *slog.Logger, limits Limits) *Memory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Memory{
		logger: logger,
		limits: limits,
		wake:   make(chan struct{}, 1),
		byID:   make(map[string]*entry),
		firing: make(map[string]Item),
		byUser: make(map[string]*places),
	}
}

// Add stores a copy of it. The bounds are checked and the item stored under
// one hold of the lock, so concurrent Adds cannot pass a bound together.
func (m *Memory) Add(ctx context.Context, it Item) error {
	users := it.UserIDs()
	m.mu.Lock()
	if err := m.admit(it.ID, users); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("schedule: add %s: %w", it.ID, err)
	}
	for _, u := range users {
		p := m.byUser[u]
		if p == nil {
			p = &places{}
			m.byUser[u] = p
		}
		p.add(cursorOf(it))
	}
	earliest := m.push(cloneItem(it), it.ScheduledAt)
	m.mu.Unlock()
	if earliest {
		m.signal()
	}
	return nil
}

// admit says why an item with id for users cannot be stored, or nil. The
// duplicate comes first: a retry of an Add that succeeded is told so, not
// that its own item fills the bound. The caller holds m.mu.
func (m *Memory) admit(id string, users []string) error {
	_, pending := m.byID[id]
	_, firing := m.firing[id]
	if pending || firing {
		return ErrDuplicate
	}
	if max := m.limits.Total; max > 0 && len(m.byID)+len(m.firing) >= max {
		return &LimitError{Limit: max}
	}
	if max := m.limits.PerUser; max > 0 {
		for _, u := range users {
			if p := m.byUser[u]; p != nil && p.Len() >= max {
				return &LimitError{UserID: u, Limit: max}
			}
		}
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

// List returns copies of one page of pending items, read from an index in
// listing order: O(log n + Limit) under the lock, wherever the page starts.
func (m *Memory) List(ctx context.Context, q Query) (Page, error) {
	if q.Limit < 1 {
		return Page{}, fmt.Errorf("schedule: list: limit %d is not positive", q.Limit)
	}
	var page Page
	// One more than the page, to know whether another page follows.
	items := make([]Item, 0, min(q.Limit, 256)+1)
	collect := func(c Cursor) bool {
		// A user's index holds the items being fired too: not listed.
		if e, ok := m.byID[c.ID]; ok {
			items = append(items, e.item)
		}
		return len(items) <= q.Limit
	}
	m.mu.Lock()
	if q.UserID == "" {
		page.Total = len(m.byID)
		m.pendingAt.after(q.After, collect)
	} else if p := m.byUser[q.UserID]; p != nil {
		page.Total = m.pendingOf(q.UserID, p)
		p.after(q.After, collect)
	}
	m.mu.Unlock()
	if len(items) > q.Limit {
		items = items[:q.Limit]
		page.Next = cursorOf(items[len(items)-1])
	}
	// Stored items are never changed (a retry stores a new entry), so
	// they can be copied outside the lock.
	for i := range items {
		items[i] = cloneItem(items[i])
	}
	page.Items = items
	return page, nil
}

// pendingOf counts the user's pending items. Its index p holds those being
// fired too: it walks whichever is smaller, p or the items being fired. The
// caller holds m.mu.
func (m *Memory) pendingOf(userID string, p *places) int {
	if p.Len() <= len(m.firing) {
		n := 0
		p.after(Cursor{}, func(c Cursor) bool {
			if _, ok := m.byID[c.ID]; ok {
				n++
			}
			return true
		})
		return n
	}
	n := p.Len()
	for _, it := range m.firing {
		if slices.ContainsFunc(it.Notifications, func(n broker.Notification) bool { return n.UserID == userID }) {
			n--
		}
	}
	return n
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
	m.pendingAt.remove(cursorOf(e.item))
	m.forgetUsers(e.item)
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
			m.settle(it)
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
		m.pendingAt.remove(cursorOf(e.item))
		m.firing[e.item.ID] = e.item
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
func (m *Memory) settle(it Item) {
	m.mu.Lock()
	delete(m.firing, it.ID)
	m.forgetUsers(it)
	m.mu.Unlock()
}

// forgetUsers takes an item that is gone out of its users' indexes. The
// caller holds m.mu.
func (m *Memory) forgetUsers(it Item) {
	for _, u := range it.UserIDs() {
		if p := m.byUser[u]; p != nil {
			p.remove(cursorOf(it))
			if p.Len() == 0 {
				delete(m.byUser, u)
			}
		}
	}
}

// push adds an item due at due and reports whether it is now the earliest.
// The caller holds m.mu.
func (m *Memory) push(it Item, due time.Time) bool {
	e := &entry{item: it, due: due}
	heap.Push(&m.pending, e)
	m.byID[it.ID] = e
	m.pendingAt.add(cursorOf(it))
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

// entryHeap orders entries by due time, then by CreatedAt and ID, so items
// due together fire in a stable order: the order they were added in.
type entryHeap []*entry

func (h entryHeap) Len() int { return len(h) }

func (h entryHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if c := a.due.Compare(b.due); c != 0 {
		return c < 0
	}
	if c := a.item.CreatedAt.Compare(b.item.CreatedAt); c != 0 {
		return c < 0
	}
	return a.item.ID < b.item.ID
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
