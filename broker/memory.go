package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Memory is the bus of a single process: Publish stores and delivers under
// one lock, so sequence order, storage order and delivery order are the same
// order.
type Memory struct {
	hub       *Hub
	inbox     UserLog
	limits    HistoryLimits
	delivered DeliveryFunc
	epoch     string
	now       func() time.Time

	mu      sync.Mutex
	seq     uint64
	history map[string]*channelHistory
	// forgotten is the highest sequence number of a channel history
	// dropped whole by sweep: a cursor before it cannot be replayed on a
	// channel that has no history any more.
	forgotten uint64
	lastSweep time.Time
	// published remembers the first sequence number of recent publishes
	// by their first notification's id, as the Redis bus does: a publish
	// of the same ids again (a retried Laravel job, an interrupted send's
	// retry) returns them instead of publishing twice.
	published recentIDs
}

// sweepEvery spaces the sweeps that drop channel histories emptied by age,
// so channels nobody broadcasts on any more do not stay in memory.
const sweepEvery = time.Minute

var _ Bus = (*Memory)(nil)

// NewMemory returns a bus delivering to hub and storing user-addressed
// notifications in inbox. delivered may be nil.
func NewMemory(hub *Hub, inbox UserLog, limits HistoryLimits, delivered DeliveryFunc) *Memory {
	if delivered == nil {
		delivered = func(Notification, int) {}
	}
	return &Memory{
		hub:       hub,
		inbox:     inbox,
		limits:    limits,
		delivered: delivered,
		epoch:     newEpoch(),
		now:       time.Now,
		history:   make(map[string]*channelHistory),
	}
}

// Publish implements Bus.
//
// The memory bus remembers the ids of the last maxRecentIDs publishes, for
// publishOnce at most.
func (b *Memory) Publish(ctx context.Context, ns ...Notification) ([]Notification, error) {
	published := time.Now()
	// Encode outside the lock; only the cursor, which needs the sequence
	// number, is spliced in under it.
	bodies := make([][]byte, len(ns))
	for i, n := range ns {
		body, err := json.Marshal(n)
		if err != nil {
			return nil, fmt.Errorf("broker: encode notification %s: %w", n.ID, err)
		}
		bodies[i] = body
	}
	out := slices.Clone(ns)
	reached := make([]int, len(ns))

	b.mu.Lock()
	if first, ok := b.published.lookup(ns[0].ID, b.now()); ok {
		b.mu.Unlock()
		for i := range out {
			out[i].Seq = first + uint64(i)
		}
		return out, nil
	}
	for i := range out {
		out[i].Seq = b.seq + uint64(i) + 1
	}
	if err := b.inbox.Append(ctx, out...); err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("broker: publish: %w", err)
	}
	b.seq += uint64(len(out))
	now := b.now()
	b.published.add(ns[0].ID, out[0].Seq, now)
	if now.Sub(b.lastSweep) >= sweepEvery {
		b.sweep(now)
	}
	for i, n := range out {
		if n.UserID == "" {
			for _, ch := range n.Channels {
				b.channel(ch).append(n, now, b.limits)
			}
		}
		f := spliceCursor(bodies[i], Cursor{Epoch: b.epoch, Seq: n.Seq})
		f.Published = published
		reached[i] = b.hub.Deliver(n, f)
	}
	b.mu.Unlock()

	for i, n := range out {
		b.delivered(n, reached[i])
	}
	return out, nil
}

// Head implements Bus.
func (b *Memory) Head(context.Context) (Cursor, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Cursor{Epoch: b.epoch, Seq: b.seq}, nil
}

// Replay implements Bus.
func (b *Memory) Replay(ctx context.Context, connID string, after Cursor) ([]*Frame, error) {
	b.mu.Lock()
	head := b.seq
	// The channels are read under the publish lock: a subscription made
	// before this point is replayed up to head, and everything published
	// on it later has a sequence number above head, so it arrives live.
	conn, ok := b.hub.Connection(connID)
	if !ok {
		b.mu.Unlock()
		return nil, fmt.Errorf("broker: replay for %s: %w", connID, ErrUnknownConnection)
	}
	userID, channels := conn.UserID, conn.Channels
	var missed []Notification
	var err error
	if after.Epoch != b.epoch || after.Seq > head {
		err = fmt.Errorf("broker: replay after %s (head %d): %w", after, head, ErrCursorExpired)
	}
	now := b.now()
	for _, ch := range channels {
		if err != nil {
			break
		}
		h := b.history[ch]
		if h == nil {
			if after.Seq < b.forgotten {
				err = fmt.Errorf("broker: replay channel %s after %s (histories dropped through %d): %w", ch, after, b.forgotten, ErrCursorExpired)
			}
			continue
		}
		h.trim(now, b.limits)
		var found []Notification
		found, err = h.since(after.Seq)
		if err != nil {
			err = fmt.Errorf("broker: replay channel %s after %s: %w", ch, after, err)
		}
		missed = append(missed, found...)
	}
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}

	own, err := b.inbox.Since(ctx, userID, after.Seq)
	if err != nil {
		return nil, fmt.Errorf("broker: replay inbox of %s after %s: %w", userID, after, err)
	}
	return replayFrames(missed, own, userID, channels, head, after.Epoch)
}

// NotifyUser implements Bus.
func (b *Memory) NotifyUser(_ context.Context, userID string, f *Frame) error {
	b.hub.DeliverToUser(userID, f)
	return nil
}

// NotifyChannel implements Bus. Under the publish lock, so it is ordered
// with notifications as on the Redis bus.
func (b *Memory) NotifyChannel(_ context.Context, channel string, f *Frame, except string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hub.DeliverToChannel(channel, f, except)
	return nil
}

// Subscribe implements Bus.
func (b *Memory) Subscribe(_ context.Context, c ChannelChange) (Subscription, error) {
	return b.hub.apply(opSubscribe, c)
}

// Unsubscribe implements Bus.
func (b *Memory) Unsubscribe(_ context.Context, c ChannelChange) (Subscription, error) {
	return b.hub.apply(opUnsubscribe, c)
}

// sweep drops the histories that age has emptied. The caller holds b.mu.
func (b *Memory) sweep(now time.Time) {
	b.lastSweep = now
	for name, h := range b.history {
		h.trim(now, b.limits)
		if len(h.entries) == 0 {
			b.forgotten = max(b.forgotten, h.trimmed)
			delete(b.history, name)
		}
	}
}

func (b *Memory) channel(name string) *channelHistory {
	h := b.history[name]
	if h == nil {
		h = &channelHistory{}
		b.history[name] = h
	}
	return h
}

// channelHistory keeps a channel's recent broadcasts in sequence order, so
// replay finds its start by binary search.
type channelHistory struct {
	entries []historyEntry
	// trimmed is the highest sequence number retention has dropped: a
	// cursor older than it would miss something.
	trimmed uint64
}

type historyEntry struct {
	n  Notification
	at time.Time
}

func (h *channelHistory) append(n Notification, now time.Time, limits HistoryLimits) {
	h.entries = append(h.entries, historyEntry{n: n, at: now})
	h.trim(now, limits)
}

func (h *channelHistory) trim(now time.Time, limits HistoryLimits) {
	drop := 0
	if limits.MaxPerChannel > 0 && len(h.entries) > limits.MaxPerChannel {
		drop = len(h.entries) - limits.MaxPerChannel
	}
	if limits.MaxAge > 0 {
		cutoff := now.Add(-limits.MaxAge)
		for drop < len(h.entries) && h.entries[drop].at.Before(cutoff) {
			drop++
		}
	}
	if drop == 0 {
		return
	}
	h.trimmed = h.entries[drop-1].n.Seq
	// Reslicing from the front shrinks the capacity, so the next append
	// that outgrows it moves the window to a fresh array and the dropped
	// prefix is freed: amortised O(1), no copy per broadcast.
	clear(h.entries[:drop])
	h.entries = h.entries[drop:]
}

func (h *channelHistory) since(after uint64) ([]Notification, error) {
	if after < h.trimmed {
		return nil, ErrCursorExpired
	}
	i := sort.Search(len(h.entries), func(i int) bool { return h.entries[i].n.Seq > after })
	out := make([]Notification, 0, len(h.entries)-i)
	for _, e := range h.entries[i:] {
		out = append(out, e.n)
	}
	return out, nil
}

// maxRecentIDs bounds how many publishes the memory bus remembers: at a
// burst's rate the oldest are forgotten before publishOnce is over.
const maxRecentIDs = 100_000

// recentIDs maps a publish's first id to its first sequence number for
// publishOnce, oldest forgotten first. Its owner holds the lock.
type recentIDs struct {
	first map[string]uint64
	order []recentID // oldest first, from head
	head  int
}

type recentID struct {
	id string
	at time.Time
}

func (r *recentIDs) lookup(id string, now time.Time) (uint64, bool) {
	r.expire(now)
	seq, ok := r.first[id]
	return seq, ok
}

func (r *recentIDs) add(id string, seq uint64, now time.Time) {
	if r.first == nil {
		r.first = make(map[string]uint64)
	}
	if len(r.first) >= maxRecentIDs {
		r.drop()
	}
	r.first[id] = seq
	r.order = append(r.order, recentID{id, now})
}

// expire forgets the publishes older than publishOnce.
func (r *recentIDs) expire(now time.Time) {
	for r.head < len(r.order) && now.Sub(r.order[r.head].at) >= publishOnce {
		r.drop()
	}
}

// drop forgets the oldest publish, and compacts the queue now and then.
func (r *recentIDs) drop() {
	if r.head == len(r.order) {
		return
	}
	delete(r.first, r.order[r.head].id)
	r.order[r.head] = recentID{}
	r.head++
	if r.head > 1024 && r.head > len(r.order)/2 {
		n := copy(r.order, r.order[r.head:])
		clear(r.order[n:])
		r.order, r.head = r.order[:n], 0
	}
}
