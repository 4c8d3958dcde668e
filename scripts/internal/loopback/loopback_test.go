package loopback

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"
)

func TestSource(t *testing.T) {
	is := is.New(t)
	is.Equal(Source(1, 0).IP.String(), "127.0.0.1")
	is.Equal(Source(2, 3).IP.String(), "127.0.0.5")
	is.Equal(Source(1, 253).IP.String(), "127.0.0.254")
	is.True(Source(1, 254) == nil) // 127.0.0.255 is the broadcast address
}

func TestDialFromSource(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	defer ln.Close()
	d := net.Dialer{LocalAddr: Source(1, 6), Control: BindAddressNoPort}
	c, err := d.Dial("tcp", ln.Addr().String())
	is.NoErr(err)
	defer c.Close()
	peer, err := ln.Accept()
	is.NoErr(err)
	defer peer.Close()
	is.Equal(peer.RemoteAddr().(*net.TCPAddr).IP.String(), "127.0.0.7") // the server sees the chosen source
}

func TestStablePortIsBelowTheEphemeralRange(t *testing.T) {
	is := is.New(t)
	port, err := StablePort()
	is.NoErr(err)
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		low, _ = strconv.Atoi(strings.Fields(string(b))[0])
	}
	is.True(port >= 10000 && port < low) // below the ephemeral range
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	is.NoErr(err) // and it is free
	ln.Close()
}
