package inbox

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"notification-service/broker"
)

// Memory is the Store of a single process: every inbox in one map under one
// lock. Nothing survives a restart, which matches the memory bus, whose new
// epoch expires every cursor issued before it.
type Memory struct {
	limits Limits
	now    func() time.Time

	mu    sync.Mutex
	users map[string]*userInbox
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store keeping what limits allow. A zero field
// of limits leaves that dimension unbounded.
func NewMemory(limits Limits) *Memory {
	return &Memory{
		limits: limits,
		now:    time.Now,
		users:  make(map[string]*userInbox),
	}
}

// userInbox is one user's entries in Seq order, so a page or a replay finds
// its start by binary search instead of walking from either end.
type userInbox struct {
	entries []Entry
	// ids maps a notification id to its Seq rather than to an index:
	// deleting from the middle shifts indices, Seq never changes.
	ids map[string]uint64
	// unread is kept by every change, so counting is O(1).
	unread int
	// trimmed is the highest Seq retention has dropped. A replay from
	// before it would silently miss that entry. User deletions do not
	// move it: a deleted entry is one the user no longer wants replayed.
	trimmed uint64
}

// Append implements Store.
func (m *Memory) Append(_ context.Context, ns ...broker.Notification) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, n := range ns {
		if n.UserID == "" {
			continue
		}
		u := m.users[n.UserID]
		if u == nil {
			u = &userInbox{ids: make(map[string]uint64)}
			m.users[n.UserID] = u
		}
		u.add(n)
		u.trim(now, m.limits)
	}
	return nil
}

// List implements Store. A Limit below one is the caller's bug and is
// reported rather than guessed at.
func (m *Memory) List(_ context.Context, userID string, q Query) (Page, error) {
	if q.Limit < 1 {
		return Page{}, fmt.Errorf("inbox: list %s: limit %d is not positive", userID, q.Limit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.inbox(userID)
	if u == nil {
		return Page{}, nil
	}
	end := len(u.entries)
	if q.Before != 0 {
		end = sort.Search(len(u.entries), func(i int) bool { return u.entries[i].Seq >= q.Before })
	}
	page := Page{Total: len(u.entries), Unread: u.unread}
	for i := end - 1; i >= 0; i-- {
		e := &u.entries[i]
		if q.UnreadOnly && e.Read {
			continue
		}
		// Next is set only once another matching entry is known to
		// exist, so a page that happens to end exactly at the oldest
		// match still says there is nothing more.
		if len(page.Entries) == q.Limit {
			page.Next = page.Entries[len(page.Entries)-1].Seq
			break
		}
		page.Entries = append(page.Entries, e.clone())
	}
	return page, nil
}

// MarkRead implements Store.
func (m *Memory) MarkRead(_ context.Context, userID, id string, at time.Time) (Entry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.inbox(userID)
	if u == nil {
		return Entry{}, false, fmt.Errorf("inbox: mark read %s for %s: %w", id, userID, ErrNotFound)
	}
	i, ok := u.find(id)
	if !ok {
		return Entry{}, false, fmt.Errorf("inbox: mark read %s for %s: %w", id, userID, ErrNotFound)
	}
	changed := u.markRead(i, at)
	return u.entries[i].clone(), changed, nil
}

// MarkAllRead implements Store.
func (m *Memory) MarkAllRead(_ context.Context, userID string, at time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.inbox(userID)
	if u == nil {
		return 0, nil
	}
	changed := u.unread
	for i := range u.entries {
		if u.unread == 0 {
			break
		}
		u.markRead(i, at)
	}
	return changed, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, userID, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.inbox(userID)
	if u == nil {
		return fmt.Errorf("inbox: delete %s for %s: %w", id, userID, ErrNotFound)
	}
	i, ok := u.find(id)
	if !ok {
		return fmt.Errorf("inbox: delete %s for %s: %w", id, userID, ErrNotFound)
	}
	u.remove(i)
	// An inbox that retention never trimmed carries no state once empty;
	// one that was trimmed must keep its mark for Since.
	if len(u.entries) == 0 && u.trimmed == 0 {
		delete(m.users, userID)
	}
	return nil
}

// Unread implements Store.
func (m *Memory) Unread(_ context.Context, userID string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.inbox(userID)
	if u == nil {
		return 0, nil
	}
	return u.unread, nil
}

// Since implements Store.
func (m *Memory) Since(_ context.Context, userID string, after uint64) ([]broker.Notification, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.inbox(userID)
	if u == nil {
		return nil, nil
	}
	if after < u.trimmed {
		return nil, fmt.Errorf("inbox: since %d for %s (trimmed through %d): %w", after, userID, u.trimmed, ErrTrimmed)
	}
	i := sort.Search(len(u.entries), func(i int) bool { return u.entries[i].Seq > after })
	out := make([]broker.Notification, 0, len(u.entries)-i)
	for _, e := range u.entries[i:] {
		out = append(out, e.Notification)
	}
	return out, nil
}

// inbox returns userID's inbox with entries past MaxAge dropped, or nil if
// the user has none. Age is applied lazily here as well as on Append, so an
// inbox nobody writes to still ages out before anyone reads it. m.mu must be
// held.
func (m *Memory) inbox(userID string) *userInbox {
	u := m.users[userID]
	if u != nil {
		u.trim(m.now(), m.limits)
	}
	return u
}

func (u *userInbox) add(n broker.Notification) {
	if i, ok := u.find(n.ID); ok {
		// Ids are unique in practice. Should one repeat, the later
		// notification replaces the earlier rather than leaving two
		// entries behind one id.
		u.remove(i)
	}
	// The bus appends in Seq order, so this is the end of the slice unless
	// a caller breaks that contract; then the entry still goes where its
	// Seq says, keeping the binary searches valid.
	i := len(u.entries)
	if i > 0 && u.entries[i-1].Seq > n.Seq {
		i = sort.Search(len(u.entries), func(j int) bool { return u.entries[j].Seq > n.Seq })
	}
	u.entries = slices.Insert(u.entries, i, Entry{Notification: n})
	u.ids[n.ID] = n.Seq
	u.unread++
}

// find returns the index of the entry with the given id.
func (u *userInbox) find(id string) (int, bool) {
	seq, ok := u.ids[id]
	if !ok {
		return 0, false
	}
	i := sort.Search(len(u.entries), func(i int) bool { return u.entries[i].Seq >= seq })
	// Seq is the bus's global sequence number, so one match is the rule;
	// checking the id guards the map against a caller that reuses one.
	for ; i < len(u.entries) && u.entries[i].Seq == seq; i++ {
		if u.entries[i].ID == id {
			return i, true
		}
	}
	return 0, false
}

func (u *userInbox) markRead(i int, at time.Time) bool {
	e := &u.entries[i]
	if e.Read {
		return false
	}
	e.Read = true
	// A fresh pointer per entry: nothing outside the store holds it, and
	// clone hands out copies.
	e.ReadAt = &at
	u.unread--
	return true
}

func (u *userInbox) remove(i int) {
	u.forget(u.entries[i])
	u.entries = slices.Delete(u.entries, i, i+1)
}

// forget drops e from the id index and the unread count.
func (u *userInbox) forget(e Entry) {
	if !e.Read {
		u.unread--
	}
	if seq, ok := u.ids[e.ID]; ok && seq == e.Seq {
		delete(u.ids, e.ID)
	}
}

// trim drops the oldest entries beyond MaxPerUser and those whose Timestamp
// is older than MaxAge. Only a prefix is ever dropped, so everything up to
// trimmed is gone and everything after it that was not deleted is still
// here, which is what lets Since promise a complete replay. An entry out of
// Timestamp order waits for the older-Seq entries ahead of it.
func (u *userInbox) trim(now time.Time, limits Limits) {
	drop := 0
	if limits.MaxPerUser > 0 && len(u.entries) > limits.MaxPerUser {
		drop = len(u.entries) - limits.MaxPerUser
	}
	if limits.MaxAge > 0 {
		cutoff := now.Add(-limits.MaxAge)
		for drop < len(u.entries) && u.entries[drop].Timestamp.Before(cutoff) {
			drop++
		}
	}
	if drop == 0 {
		return
	}
	for _, e := range u.entries[:drop] {
		u.forget(e)
	}
	u.trimmed = max(u.trimmed, u.entries[drop-1].Seq)
	// Reslicing from the front shrinks the capacity, so the next append
	// that outgrows it moves the window to a fresh array and the dropped
	// prefix is freed: amortised O(1), no copy per append.
	clear(u.entries[:drop])
	u.entries = u.entries[drop:]
}

// clone returns e with its own ReadAt, so a caller cannot change the store
// through the pointer. Channels and Data are shared: nothing mutates them.
func (e *Entry) clone() Entry {
	c := *e
	if e.ReadAt != nil {
		at := *e.ReadAt
		c.ReadAt = &at
	}
	return c
}
