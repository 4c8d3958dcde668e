package transport

import (
	"container/heap"
	"sync"
	"time"
)

// expiryQueue holds the token deadlines of live streams, earliest first.
// Server.Run owns the one timer that ends each stream when its token
// expires: one heap and one timer for all connections rather than a timer
// per connection, whose memory would be paid by every connection. A stream
// leaving takes its entry out, so the heap holds live streams only.
type expiryQueue struct {
	mu      sync.Mutex
	entries expiryHeap
	// wake tells Run that the earliest deadline changed; one pending
	// signal is enough, Run rereads the heap.
	wake chan struct{}
}

type expiryEntry struct {
	at    time.Time
	c     *conn
	index int
}

func newExpiryQueue() *expiryQueue {
	return &expiryQueue{wake: make(chan struct{}, 1)}
}

// add schedules c's end at at.
func (q *expiryQueue) add(c *conn, at time.Time) {
	q.mu.Lock()
	e := &expiryEntry{at: at, c: c}
	heap.Push(&q.entries, e)
	c.expiry = e
	first := e.index == 0
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// remove takes c's entry out, if it has one.
func (q *expiryQueue) remove(c *conn) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := c.expiry; e != nil && e.index >= 0 {
		heap.Remove(&q.entries, e.index)
	}
	c.expiry = nil
}

// popDue takes out the connections whose deadline is not after now, and
// returns the next deadline (zero when the heap is empty).
func (q *expiryQueue) popDue(now time.Time) (due []*conn, next time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.entries) > 0 && !q.entries[0].at.After(now) {
		e := heap.Pop(&q.entries).(*expiryEntry)
		e.c.expiry = nil
		due = append(due, e.c)
	}
	if len(q.entries) > 0 {
		next = q.entries[0].at
	}
	return due, next
}

// len is the number of streams waiting to expire.
func (q *expiryQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries)
}

// expiryHeap implements heap.Interface; index lets remove find an entry in
// O(log n).
type expiryHeap []*expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*expiryEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
