package transport

import (
	"context"
	"runtime"
	"sync"
)

// writers are the goroutines that write to hijacked connections: at most
// one per processor, started when connections have frames to write and
// gone when none have. They take connections in the order they became
// ready and give each one batch at a time (conn.writeSome), and they never
// wait on a socket, so they are always busy with a connection that can be
// written now.
//
// Two things come of that. A burst of broadcasts costs one write per
// connection, not one per notification: while a connection waits its turn
// its queue fills, and the turn writes all of it at once. And the request
// that publishes the next notification is not stuck behind ten thousand
// runnable goroutines, one per connection, in the scheduler's queue.
type writers struct {
	max int

	mu      sync.Mutex
	ready   []*conn // FIFO from head; each connection at most once (it holds the writer role)
	head    int
	running int
	// idle is closed when the last running writer returns (wait).
	idle chan struct{}
}

func newWriters() *writers {
	return &writers{max: runtime.GOMAXPROCS(0)}
}

// add queues c, whose writer role its caller holds, for its turn.
func (w *writers) add(c *conn) {
	w.mu.Lock()
	w.ready = append(w.ready, c)
	start := w.running < w.max
	if start {
		if w.running == 0 {
			w.idle = make(chan struct{})
		}
		w.running++
	}
	w.mu.Unlock()
	if start {
		go w.work()
	}
}

// work writes for ready connections until there are none.
func (w *writers) work() {
	for {
		c := w.take()
		if c == nil {
			return
		}
		c.writeSome()
	}
}

// take returns the connection whose turn it is, or nil, and then counts
// the calling writer out.
func (w *writers) take() *conn {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.head == len(w.ready) {
		w.ready, w.head = w.ready[:0], 0
		w.running--
		if w.running == 0 {
			close(w.idle)
		}
		return nil
	}
	c := w.ready[w.head]
	w.ready[w.head] = nil
	w.head++
	// Under steady load the queue never empties: move what is left to the
	// front now and then, so the array does not grow without end.
	if w.head > 1024 && w.head > len(w.ready)/2 {
		n := copy(w.ready, w.ready[w.head:])
		clear(w.ready[n:])
		w.ready, w.head = w.ready[:n], 0
	}
	return c
}

// wait returns once no writer runs, or when ctx ends. Once every stream
// has ended, nothing gives the writers work any more: they finish what
// they hold and return.
func (w *writers) wait(ctx context.Context) error {
	w.mu.Lock()
	if w.running == 0 {
		w.mu.Unlock()
		return nil
	}
	idle := w.idle
	w.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
