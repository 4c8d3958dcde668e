package laravel

import (
	"context"
	"hash/fnv"
	"sync"
	"time"
)

// entry is one pub/sub message as this instance received it.
type entry struct {
	seq uint64 // this instance's count of messages received
	// seg numbers the unbroken subscription it arrived on: Redis sends
	// every subscriber the same messages in the same order, so two
	// instances' entries of one segment line up, but nothing lines up
	// across a reconnection, which loses what was published meanwhile.
	seg     uint64
	channel string // Laravel's prefix stripped
	payload []byte
	digest  uint64 // of channel and payload: what instances compare
	at      time.Time
}

// entryOverhead approximates an entry's memory beside its payload.
const entryOverhead = 128

func digest(channel string, payload []byte) uint64 {
	h := fnv.New64a()
	h.Write([]byte(channel))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum64()
}

// backlog keeps what this instance received lately, on every instance
// whether it leads or not: the leader publishes from it, and a standby that
// takes over finds in it where the previous leader stopped. It is bounded
// by age and bytes; what falls off before the leader reached it is lost.
type backlog struct {
	maxAge   time.Duration
	maxBytes int

	mu      sync.Mutex
	entries []entry // seq contiguous, oldest first
	next    uint64  // the seq the next message gets
	bytes   int
	seg     uint64 // 0 until the first subscription
	// segStart is the first seq of the current segment, and
	// progressAtStart the leader's progress marker read just after the
	// subscription started ("" if there was none; known false if it
	// could not be read).
	segStart        uint64
	progressAtStart string
	progressKnown   bool
	changed         chan struct{} // closed and replaced at every change
}

func newBacklog(maxAge time.Duration, maxBytes int) *backlog {
	return &backlog{maxAge: maxAge, maxBytes: maxBytes, next: 1, changed: make(chan struct{})}
}

// signal wakes every waiter; b.mu is held.
func (b *backlog) signal() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// add appends a message received on the current subscription.
func (b *backlog) add(channel string, payload []byte, now time.Time) {
	e := entry{channel: channel, payload: payload, digest: digest(channel, payload), at: now}
	b.mu.Lock()
	defer b.mu.Unlock()
	e.seq, e.seg = b.next, b.seg
	b.next++
	b.entries = append(b.entries, e)
	b.bytes += len(payload) + len(channel) + entryOverhead
	b.trim(now)
	b.signal()
}

// trim drops the oldest entries past the bounds; b.mu is held.
func (b *backlog) trim(now time.Time) {
	drop := 0
	for drop < len(b.entries)-1 {
		e := b.entries[drop]
		if b.bytes <= b.maxBytes && now.Sub(e.at) <= b.maxAge {
			break
		}
		b.bytes -= len(e.payload) + len(e.channel) + entryOverhead
		drop++
	}
	if drop > 0 {
		// Copy rather than reslice, so the dropped payloads are freed.
		b.entries = append(b.entries[:0:0], b.entries[drop:]...)
	}
}

// subscribed starts a new segment: the subscription is (again) in place,
// and progress is the leader's marker read right after.
func (b *backlog) subscribed(progress string, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seg++
	b.segStart = b.next
	b.progressAtStart, b.progressKnown = progress, known
	b.signal()
}

// isSubscribed says whether a subscription has been in place at least once.
func (b *backlog) isSubscribed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seg > 0
}

// at returns the entry with seq, if it is still kept.
func (b *backlog) at(seq uint64) (entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.atLocked(seq)
}

func (b *backlog) atLocked(seq uint64) (entry, bool) {
	if len(b.entries) == 0 || seq < b.entries[0].seq || seq >= b.next {
		return entry{}, false
	}
	return b.entries[seq-b.entries[0].seq], true
}

// wait returns the oldest kept entry from seq on, waiting for one to arrive
// until ctx ends.
func (b *backlog) wait(ctx context.Context, seq uint64) (entry, bool) {
	for {
		b.mu.Lock()
		if n := len(b.entries); n > 0 && b.entries[n-1].seq >= seq {
			e, ok := b.atLocked(seq)
			if !ok { // seq fell off the front
				e = b.entries[0]
			}
			b.mu.Unlock()
			return e, true
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return entry{}, false
		}
	}
}

// waitFor waits up to d for any change; false if ctx ended.
func (b *backlog) waitFor(ctx context.Context, d time.Duration) bool {
	b.mu.Lock()
	changed := b.changed
	b.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// window returns the digests of up to n entries ending at seq, oldest
// first, within seq's segment: what a progress marker records.
func (b *backlog) window(seq uint64, n int) []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	last, ok := b.atLocked(seq)
	if !ok {
		return nil
	}
	var w []uint64
	for k := uint64(0); k < uint64(n) && k < seq; k++ {
		e, ok := b.atLocked(seq - k)
		if !ok || e.seg != last.seg {
			break
		}
		w = append(w, e.digest)
	}
	for i, j := 0, len(w)-1; i < j; i, j = i+1, j-1 {
		w[i], w[j] = w[j], w[i]
	}
	return w
}

// find returns the newest entry where window (digests, oldest first) ends:
// its digest is the window's last, and every entry before it in its
// segment that this instance still keeps matches the window's. Choosing
// the newest when a run of identical messages makes several places match
// can only skip messages, never publish one twice.
func (b *backlog) find(window []uint64) (uint64, bool) {
	if len(window) == 0 {
		return 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.entries) - 1; i >= 0; i-- {
		if b.matchesAt(i, window) {
			return b.entries[i].seq, true
		}
	}
	return 0, false
}

func (b *backlog) matchesAt(i int, window []uint64) bool {
	seg := b.entries[i].seg
	for k := 0; k < len(window) && k <= i; k++ {
		e := b.entries[i-k]
		if e.seg != seg {
			break
		}
		if e.digest != window[len(window)-1-k] {
			return false
		}
	}
	return true
}

// current returns the current segment's first seq, the next seq, and the
// progress marker read when the segment started.
func (b *backlog) current() (segStart, next uint64, progress string, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.segStart, b.next, b.progressAtStart, b.progressKnown
}

// oldest is the seq of the oldest kept entry (next when there is none).
func (b *backlog) oldest() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.entries) == 0 {
		return b.next
	}
	return b.entries[0].seq
}
