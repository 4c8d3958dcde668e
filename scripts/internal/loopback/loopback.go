// Package loopback holds what the load tools need to open many thousands of
// TCP connections on one machine: source addresses spread over 127.0.0.x,
// the socket option that lets them share ports, the open-file limit and a
// free port to listen on. It does not know HTTP or the service.
package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT (not in package
// syscall). With it, binding a source address leaves the port to connect,
// which picks one unique for the whole 4-tuple; without it bind picks a port
// free on that address for any destination, and ports in TIME_WAIT from the
// previous run are off limits.
const ipBindAddressNoPort = 24

// BindAddressNoPort is a net.Dialer Control function that sets
// IP_BIND_ADDRESS_NO_PORT. Best effort: a kernel without the option still
// works for runs small enough not to need it.
func BindAddressNoPort(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
}

// Source is source address number i (0-based) of the 127.0.0.0/8 range,
// starting at 127.0.0.first: each address has about 28,000 ephemeral ports
// (net.ipv4.ip_local_port_range) and its own per-address rate limits at
// the server, so large runs spread over several. It returns nil past
// 127.0.0.254.
func Source(first, i int) *net.TCPAddr {
	host := first + i
	if host < 1 || host > 254 {
		return nil
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(host))}
}

// RaiseFDLimit lifts the soft limit on open files to the hard limit and
// returns it: every connection is a descriptor.
func RaiseFDLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise the open-file limit to %d: %w", lim.Max, err)
		}
	}
	return lim.Cur, nil
}

// StablePort is a TCP port free on every address now and outside the
// kernel's ephemeral range (net.ipv4.ip_local_port_range), so that a
// server restarted on it later does not find it taken by some outgoing
// connection's local port: with thousands of connections coming and going,
// a port from the ephemeral range often is.
func StablePort() (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const first = 10000
	if low <= first+100 {
		return 0, fmt.Errorf("the ephemeral port range starts at %d: no stable ports below it", low)
	}
	for range 200 {
		port := first + rand.IntN(low-first)
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port between %d and %d", first, low)
}

// FreePort is a TCP port on 127.0.0.1 that nobody listened on a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
