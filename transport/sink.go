package transport

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// sink is where a stream's bytes go: a hijacked socket (sock.go), or the
// response of a stream inside net/http (responseSink).
type sink interface {
	// Write sends b at once, under a deadline of its own: a hijacked
	// connection no longer has the server's WriteTimeout, and a stream
	// must not have it anyway (it would cut a long-lived stream
	// silently).
	io.Writer
	// tryWrite sends what can go out without waiting, and says how much
	// that was.
	tryWrite(b []byte) (int, error)
	// abort moves the deadline to now, releasing a Write in progress.
	abort()
}

// errAborted is a write refused because a kick gave up on the peer.
var errAborted = errors.New("transport: write aborted: the stream is ending")

// responseSink is a stream that stays inside net/http (HTTP/2): every
// write is flushed at once, under a deadline of its own.
type responseSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	aborted *atomic.Bool
}

func (rs *responseSink) Write(b []byte) (int, error) {
	if err := rs.rc.SetWriteDeadline(time.Now().Add(rs.timeout)); err != nil {
		return 0, err
	}
	if rs.aborted.Load() { // after the deadline: see sock.Write
		return 0, errAborted
	}
	n, err := rs.w.Write(b)
	if err != nil {
		return n, err
	}
	return n, rs.rc.Flush()
}

// tryWrite is never called: a stream inside net/http has its handler as
// its writer, which may wait.
func (rs *responseSink) tryWrite([]byte) (int, error) { return 0, nil }

func (rs *responseSink) abort() { _ = rs.rc.SetWriteDeadline(time.Now()) }

// writeBuffers hold a write's frames while they are encoded: shared by all
// connections, since a connection writes now and then and holds no buffer
// between writes.
var writeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBuffer keeps a burst's big buffer from staying in the pool.
const maxPooledBuffer = 64 << 10

func putBuffer(bp *[]byte) {
	if cap(*bp) <= maxPooledBuffer {
		writeBuffers.Put(bp)
	}
}
