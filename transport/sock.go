package transport

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// sock is a hijacked connection's socket. Writes go straight to it: no
// buffer is kept per connection, since one write carries whole frames
// already.
type sock struct {
	net.Conn
	timeout time.Duration
	aborted *atomic.Bool
	// raw reaches the socket's descriptor for writes that must not wait;
	// nil when the connection has none (TLS).
	raw syscall.RawConn
	// now is tryWrite's call on the descriptor, made once: a closure
	// built per call would cost allocations on every delivery. It works on
	// next and leaves its result in wrote and err; only the writer role
	// calls tryWrite, so one set of them is enough.
	now   func(fd uintptr) bool
	next  []byte
	wrote int
	err   error
}

func newSock(nc net.Conn, timeout time.Duration, aborted *atomic.Bool) *sock {
	s := &sock{Conn: nc, timeout: timeout, aborted: aborted}
	if sc, ok := nc.(syscall.Conn); ok {
		s.raw, _ = sc.SyscallConn()
		s.now = s.writeNow
	}
	return s
}

func (s *sock) Write(b []byte) (int, error) {
	if err := s.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		return 0, err
	}
	// After arming the deadline: abort sets the flag before it moves the
	// deadline, so either this sees the flag or abort's deadline wins.
	if s.aborted.Load() {
		return 0, errAborted
	}
	n, err := s.Conn.Write(b)
	if err != nil {
		return n, err
	}
	// The deadline was this write's: tryWrite, which never waits, must not
	// find it expired later.
	return n, s.SetWriteDeadline(time.Time{})
}

// tryWrite makes one write system call on the non-blocking socket and
// reports what it took: all of b unless the socket buffer is full, which
// only a peer that reads slowly (or not at all) lets happen. It takes the
// descriptor's write lock, so it never interleaves with another Write.
func (s *sock) tryWrite(b []byte) (int, error) {
	if s.raw == nil {
		return 0, nil
	}
	s.next = b
	err := s.raw.Write(s.now)
	s.next = nil
	if err != nil {
		return 0, err
	}
	return s.wrote, s.err
}

func (s *sock) writeNow(fd uintptr) bool {
	s.wrote, s.err = writeNow(fd, s.next)
	return true // never wait here: the caller decides what waits
}

func (s *sock) abort() { _ = s.SetWriteDeadline(time.Now()) }
