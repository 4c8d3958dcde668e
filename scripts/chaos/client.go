package main

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"

	"notification-service/scripts/internal/streamread"
)

// client is one simulated browser tab and what it received. Its stream
// goroutine (session.go) writes it; the sender adds what it must receive
// as sends are accepted (expect); the monitor asks whether it is caught up;
// the report reads it once every goroutine has ended.
type client struct {
	index int32
	spec  *clientSpec

	// live says a stream is open (its ready event arrived) and not yet
	// ended; instance is that stream's instance.
	live     atomic.Bool
	instance atomic.Int32
	// heard is when bytes last arrived on the stream (a clock offset),
	// heartbeats included: the watchdog drops a stream that went silent.
	heard atomic.Int64

	mu sync.Mutex
	// conn is the open stream's connection (nil between streams): the
	// watchdog and the end of the run close it.
	conn     io.Closer
	silenced bool // the watchdog closed conn

	got      bitset    // logical send numbers received
	receipts []receipt // first receipts, in arrival order
	// expected is every accepted send this client must receive, in the
	// order the sends were accepted; expected[:confirmed] have all been
	// received.
	expected  []expectation
	confirmed int

	// cursor is the last resume cursor the stream gave (ready or
	// notification), sent back on reconnect; epoch and lastSeq are its
	// parts, for the order check.
	cursor  []byte
	epoch   string
	lastSeq uint64

	sessions     int // streams opened
	dup          int
	outOfOrder   int
	stray        int // this run's marker, a number out of range
	resets       int
	epochChanges int
}

type receipt struct {
	n  int32
	at int64
}

type expectation struct {
	n int32
	// accepted is the send's place in the order of acceptances.
	accepted int32
}

// expect adds send n, the accepted-th acceptance, to what c must receive.
func (c *client) expect(n, accepted int32) {
	c.mu.Lock()
	c.expected = append(c.expected, expectation{n: n, accepted: accepted})
	c.mu.Unlock()
}

// caughtUp says whether c has received every send it must that was among
// the first through acceptances.
func (c *client) caughtUp(through int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.confirmed < len(c.expected) && c.got.has(int(c.expected[c.confirmed].n)) {
		c.confirmed++
	}
	return c.confirmed == len(c.expected) || c.expected[c.confirmed].accepted >= through
}

var cursorField = []byte(`"cursor":"`)

// onReady notes the cursor a new stream starts from.
func (c *client) onReady(frame []byte) {
	cur, ok := streamread.StringAfter(frame, cursorField)
	if !ok {
		return
	}
	epoch, seq := splitCursor(cur)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions++
	c.cursor = append(c.cursor[:0], cur...)
	if c.epoch != "" && string(epoch) != c.epoch {
		c.epochChanges++
	}
	if string(epoch) != c.epoch {
		c.epoch = string(epoch)
	}
	c.lastSeq = seq
}

// onNotification records notification n of this run, read at at.
func (c *client) onNotification(n int, frame []byte, at int64) {
	cur, _ := streamread.StringAfter(frame, cursorField)
	epoch, seq := splitCursor(cur)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(cur) > 0 {
		c.cursor = append(c.cursor[:0], cur...)
	}
	switch {
	case n < 0 || n > maxSends:
		c.stray++
		return
	case c.got.has(n):
		c.dup++
	default:
		c.got.set(n)
		c.receipts = append(c.receipts, receipt{n: int32(n), at: at})
		if len(cur) > 0 && string(epoch) == c.epoch && seq <= c.lastSeq {
			c.outOfOrder++
		}
	}
	switch {
	case len(cur) == 0:
	case string(epoch) != c.epoch:
		c.epochChanges++
		c.epoch, c.lastSeq = string(epoch), seq
	case seq > c.lastSeq:
		c.lastSeq = seq
	}
}

func (c *client) onReset() {
	c.mu.Lock()
	c.resets++
	c.mu.Unlock()
}

// resumeCursor is the cursor to reconnect with ("" before the first
// stream).
func (c *client) resumeCursor() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.cursor)
}

// setConn makes conn the stream's connection, unless the run is ending
// (stopping), in which case it closes it and says so.
func (c *client) setConn(conn io.Closer, stopping func() bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stopping() {
		_ = conn.Close()
		return false
	}
	c.conn, c.silenced = conn, false
	return true
}

// endConn closes the stream's connection and forgets it, and says whether
// the watchdog had closed it. A stream that ended by itself (EOF, reset)
// still holds its descriptor until closed: left to the garbage collector,
// those of the 2,000 streams a SIGKILL ends stayed open for minutes.
func (c *client) endConn() (silenced bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.conn = nil
	return c.silenced
}

// closeConn closes the open stream, if any; silence says the watchdog
// does it.
func (c *client) closeConn(silence bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.silenced = c.silenced || silence
		_ = c.conn.Close()
	}
}

// splitCursor reads "<epoch>-<seq>"; a malformed cursor gives zeros. The
// epoch aliases cur.
func splitCursor(cur []byte) ([]byte, uint64) {
	i := bytes.IndexByte(cur, '-')
	if i < 0 {
		return nil, 0
	}
	var seq uint64
	for _, d := range cur[i+1:] {
		if d < '0' || d > '9' {
			return nil, 0
		}
		seq = seq*10 + uint64(d-'0')
	}
	return cur[:i], seq
}

// maxSends bounds a run's logical sends, so a corrupt number cannot make a
// client allocate a huge bitset.
const maxSends = 10_000_000

// bitset is a growable set of small non-negative integers.
type bitset []uint64

func (b bitset) has(n int) bool { return n/64 < len(b) && b[n/64]&(1<<(n%64)) != 0 }

func (b *bitset) set(n int) {
	for n/64 >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[n/64] |= 1 << (n % 64)
}
