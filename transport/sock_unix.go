//go:build unix

package transport

import (
	"errors"
	"syscall"
)

// writeNow is one write(2) on a non-blocking descriptor: a full socket
// buffer (or an interrupted call) is nothing written, not an error.
func writeNow(fd uintptr, b []byte) (int, error) {
	n, err := syscall.Write(int(fd), b)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}
