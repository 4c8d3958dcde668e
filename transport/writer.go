package transport

import (
	"slices"

	"notification-service/broker"
)

// The writer role: at most one goroutine writes to a connection at a time,
// so frames go out in queue order. Whoever gives a connection work (the
// hub's Deliver, the heartbeat, a kick) and finds no writer at work takes
// the role (claimWriterLocked) and hands it on (startWriter): to the shared
// writers (writers.go) for a hijacked connection, which write without ever
// waiting on a socket; to the handler goroutine for a stream that stays
// inside net/http (HTTP/2), which may wait (flush). A peer too slow to take
// a write at once gets a goroutine of its own for as long as that write
// takes (drain), and the end of a stream gets one too (finish), since both
// may block.

// maxFramesPerWrite bounds how many queued frames one write coalesces.
const maxFramesPerWrite = 64

// framer is what a transport makes of frames: the only part of the writer
// that differs between transports. Only the writer role calls it.
type framer interface {
	// appendFrame appends f as the transport sends it; a frame the
	// transport does not carry appends nothing.
	appendFrame(b []byte, f *broker.Frame) []byte
	// appendHeartbeat appends an SSE comment or a WebSocket ping.
	appendHeartbeat(b []byte) []byte
	// awaitsPong says whether a heartbeat is a ping the peer must answer
	// within PongTimeout (conn.heartbeat, conn.checkPong).
	awaitsPong() bool
	// end tells the client why the stream ends, where the transport can
	// (endings). It may wait (a write, a close handshake).
	end(r reason)
	// close releases the connection.
	close()
}

// claimWriterLocked takes the writer role if nobody holds it, and says
// whether the caller must then start the writer. The caller holds c.mu.
func (c *conn) claimWriterLocked() bool {
	if c.writing {
		return false
	}
	c.writing = true
	return true
}

// startWriter hands the writer role, just claimed, to whoever writes for
// this connection.
func (c *conn) startWriter() {
	if c.wake != nil {
		c.wake <- struct{}{} // never blocks: one claim at a time, and the handler drains it
		return
	}
	c.streams.writers.add(c)
}

// yield gives the writer role up once done (the frames just written) is
// out: to the writers again when there is more to do (or the stream must
// end), to nobody otherwise.
func (c *conn) yield(done []*broker.Frame) {
	c.mu.Lock()
	c.recycleLocked(done)
	more := len(c.pending) > 0 || c.beat || c.control != nil || c.reason != ""
	if !more {
		c.writing = false
	}
	c.mu.Unlock()
	if more {
		c.startWriter()
	}
}

// work is one write's worth for the writer: a control frame, up to
// maxFramesPerWrite queued frames, a heartbeat.
type work struct {
	control []byte
	batch   []*broker.Frame
	beat    bool
}

func (w work) none() bool { return w.control == nil && len(w.batch) == 0 && !w.beat }

// next is the writer's next piece of work, once done (the frames just
// written) is out, or that the stream must end. With neither, it gives the
// writer role up and returns nothing.
func (c *conn) next(done []*broker.Frame) (w work, ending bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recycleLocked(done)
	if c.reason != "" {
		return work{}, true
	}
	w = work{control: c.control, batch: c.takeLocked(), beat: c.beat}
	c.control, c.beat = nil, false
	if w.none() {
		c.writing = false
	}
	return w, false
}

// writeSome is the shared writers' turn at c: one batch, written without
// waiting. What the socket does not take at once is left to a goroutine
// of the connection's own (drain), and so is the end of the stream
// (finish): a slow or departing peer never holds up the others.
func (c *conn) writeSome() {
	w, ending := c.next(nil)
	switch {
	case ending:
		go c.finish()
		return
	case w.none():
		return
	}
	fresh := c.fresh(w.batch)
	bp, b := c.encode(w.control, fresh, w.beat)
	n, err := c.out.tryWrite(b)
	if err == nil && n < len(b) {
		go c.drain(bp, b[n:], w.batch, fresh)
		return
	}
	putBuffer(bp)
	c.wrote(fresh, err)
	c.yield(w.batch)
}

// drain finishes a write the socket did not take at once, waiting as long
// as the write timeout allows, then gives the connection back.
func (c *conn) drain(bp *[]byte, rest []byte, batch, fresh []*broker.Frame) {
	_, err := c.out.Write(rest)
	putBuffer(bp)
	c.wrote(fresh, err)
	c.yield(batch)
}

// flush is the writer of a stream inside net/http, run by its handler: it
// writes queued frames and heartbeats until there is nothing left, then
// gives up the writer role, or ends the stream once it must end. It says
// whether the stream has ended.
func (c *conn) flush() (ended bool) {
	var done []*broker.Frame
	for {
		w, ending := c.next(done)
		switch {
		case ending:
			c.finish()
			return true
		case w.none():
			return false
		}
		fresh := c.fresh(w.batch)
		bp, b := c.encode(w.control, fresh, w.beat)
		_, err := c.out.Write(b)
		putBuffer(bp)
		c.wrote(fresh, err)
		done = w.batch
	}
}

// writeFrames writes frames at once, in bounded pieces each with its own
// write deadline (a long catch-up on a slow link still makes progress),
// and says whether they all went out. The caller holds the writer role.
func (c *conn) writeFrames(frames []*broker.Frame) bool {
	for chunk := range slices.Chunk(frames, maxFramesPerWrite) {
		bp, b := c.encode(nil, chunk, false)
		_, err := c.out.Write(b)
		putBuffer(bp)
		c.wrote(chunk, err)
		if err != nil {
			return false
		}
	}
	return true
}

// fresh drops, in place, the notifications already sent in the catch-up
// (replay and live overlap while a connection catches up) and the frames
// meant for another transport.
func (c *conn) fresh(batch []*broker.Frame) []*broker.Frame {
	fresh := batch[:0]
	for _, f := range batch {
		if f.Only != "" && f.Only != c.transport {
			continue
		}
		fresh, c.lastSeq = appendFresh(fresh, f, c.lastSeq)
	}
	return fresh
}

// appendFresh drops notifications the connection already has (replay and
// live overlap while it catches up); control frames always pass.
func appendFresh(batch []*broker.Frame, f *broker.Frame, lastSeq uint64) ([]*broker.Frame, uint64) {
	if f.Seq == 0 {
		return append(batch, f), lastSeq
	}
	if f.Seq <= lastSeq {
		return batch, lastSeq
	}
	return append(batch, f), f.Seq
}

// encode puts a control frame, frames, and a heartbeat if beat, in one
// buffer from the pool: one write for all of them.
func (c *conn) encode(control []byte, frames []*broker.Frame, beat bool) (*[]byte, []byte) {
	bp := writeBuffers.Get().(*[]byte)
	b := append((*bp)[:0], control...)
	for _, f := range frames {
		b = c.w.appendFrame(b, f)
	}
	if beat {
		b = c.w.appendHeartbeat(b)
	}
	*bp = b
	return bp, b
}

// wrote accounts for a write of frames that ended with err.
func (c *conn) wrote(frames []*broker.Frame, err error) {
	if err != nil {
		c.broken = true
		c.kick(reasonWriteFailed)
		return
	}
	if len(frames) > 0 {
		c.streams.metrics.FramesWritten(c.transport, frames)
	}
}

// maxKeptQueue is the largest drained queue a connection keeps for reuse:
// a burst's worth is given back to the heap.
const maxKeptQueue = 16

// recycleLocked keeps done, a batch written, as the next queue. The caller
// holds c.mu.
func (c *conn) recycleLocked(done []*broker.Frame) {
	if done != nil && c.spare == nil && cap(done) <= maxKeptQueue {
		clear(done)
		c.spare = done[:0]
	}
}

// takeLocked removes up to maxFramesPerWrite frames from the front of the
// queue. The caller holds c.mu.
func (c *conn) takeLocked() []*broker.Frame {
	if len(c.pending) == 0 {
		return nil
	}
	if len(c.pending) <= maxFramesPerWrite {
		batch := c.pending
		c.pending, c.spare = c.spare, nil
		return batch
	}
	batch := slices.Clone(c.pending[:maxFramesPerWrite])
	n := copy(c.pending, c.pending[maxFramesPerWrite:])
	clear(c.pending[n:])
	c.pending = c.pending[:n]
	return batch
}
