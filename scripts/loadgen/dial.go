package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"notification-service/scripts/internal/loopback"
)

// target is the server under test as the clients see it: where to connect,
// from which source address, and what every stream asks for.
type target struct {
	base *url.URL
	// addr is the host:port every connection dials.
	addr string
	// perSource is how many connections share one source address on
	// loopback: each address has about 28,000 ephemeral ports
	// (net.ipv4.ip_local_port_range), so large runs spread over
	// 127.0.0.1, 127.0.0.2, ...
	perSource int
	loopback  bool
	// channels is the channels= query value of every stream ("" for none).
	channels string
	// pusher is what Pusher streams need.
	pusher pusherTarget
	// token signs a stream token for a user when the server checks them
	// (JWT_SECRET); nil otherwise.
	token func(user string) string

	dialer   net.Dialer
	wsClient *http.Client
}

func newTarget(rawURL string, perSource int, token func(string) string) (*target, error) {
	u, err := url.Parse(rawURL)
	// Plain HTTP only: the SSE client writes its request on a raw TCP
	// connection, and a load test runs over loopback anyway.
	if err != nil || u.Host == "" || u.Scheme != "http" {
		return nil, fmt.Errorf("-url %q: want http://host:port", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	ip := net.ParseIP(u.Hostname())
	tg := &target{
		base:      u,
		addr:      addr,
		perSource: max(perSource, 1),
		loopback:  ip != nil && ip.To4() != nil && ip.IsLoopback(),
		token:     token,
		dialer:    net.Dialer{Timeout: 10 * time.Second, Control: loopback.BindAddressNoPort},
	}
	tg.wsClient = &http.Client{Transport: &http.Transport{
		// Proxy stays nil: a load test never goes through HTTP_PROXY.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			i, _ := ctx.Value(streamIndexKey{}).(int)
			return tg.dial(ctx, i)
		},
		DisableKeepAlives: true,
	}}
	return tg, nil
}

// sources is how many source addresses n connections use.
func (tg *target) sources(n int) int {
	if !tg.loopback {
		return 1
	}
	return (n + tg.perSource - 1) / tg.perSource
}

// localAddr is the source address of connection i: 127.0.0.(1 + i/perSource)
// on loopback, the kernel's choice otherwise.
func (tg *target) localAddr(i int) net.Addr {
	if !tg.loopback {
		return nil
	}
	return loopback.Source(1, i/tg.perSource)
}

// dial opens connection i's TCP connection.
func (tg *target) dial(ctx context.Context, i int) (net.Conn, error) {
	d := tg.dialer
	d.LocalAddr = tg.localAddr(i)
	return d.DialContext(ctx, "tcp", tg.addr)
}

// streamURL is the URL stream s opens on path (/sse or /ws).
func (tg *target) streamURL(path string, s *stream) string {
	q := url.Values{"user_id": {s.user}}
	if tg.channels != "" {
		q.Set("channels", tg.channels)
	}
	if tg.token != nil {
		q.Set("token", tg.token(s.user))
	}
	u := *tg.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	if path == "/ws" {
		u.Scheme = "ws"
	}
	return u.String()
}

type streamIndexKey struct{}

func withStreamIndex(ctx context.Context, i int) context.Context {
	return context.WithValue(ctx, streamIndexKey{}, i)
}
