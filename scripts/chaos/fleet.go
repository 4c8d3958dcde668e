package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"notification-service/scripts/internal/loopback"
)

// fleet is every client of the run and the goroutines that keep their
// streams open: one per client, plus the watchdog. It owns them: stop ends
// them all and waits.
type fleet struct {
	clock
	cfg     config
	layout  *layout
	ev      *events
	clients []*client
	// addrs is where a client connects to reach each instance: the
	// instance itself, or the proxy in front of it.
	addrs  [instanceCount]string
	marker []byte // `"title":"cx-<run>-`: this run's notifications

	dialer net.Dialer
	wsHTTP *http.Client

	stopping atomic.Bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu sync.Mutex
	// ends counts why streams ended, e.g. "sse event reconnect
	// server_shutdown" or "ws close 1012"; fails why connects failed.
	ends  map[string]int
	fails map[string]int
}

func newFleet(cfg config, clk clock, l *layout, ev *events, addrs [instanceCount]string) *fleet {
	f := &fleet{
		clock: clk, cfg: cfg, layout: l, ev: ev, addrs: addrs,
		marker: fmt.Appendf(nil, `"title":"cx-%s-`, l.runID),
		dialer: net.Dialer{Timeout: 5 * time.Second, Control: loopback.BindAddressNoPort},
		ends:   map[string]int{},
		fails:  map[string]int{},
	}
	f.clients = make([]*client, len(l.clients))
	for i := range l.clients {
		c := &client{index: int32(i), spec: &l.clients[i]}
		c.instance.Store(-1)
		f.clients[i] = c
	}
	f.wsHTTP = &http.Client{Transport: &http.Transport{
		// Proxy stays nil: nothing here goes through HTTP_PROXY.
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			c := ctx.Value(clientKey{}).(*client)
			return f.dial(ctx, c, addr)
		},
		DisableKeepAlives: true,
	}}
	return f
}

type clientKey struct{}

// start opens every client's stream, spread over a moment as real clients
// arrive (half a millisecond per client), and keeps them open until stop.
func (f *fleet) start(ctx context.Context) {
	ctx, f.cancel = context.WithCancel(ctx)
	spread := time.Duration(len(f.clients)) * 500 * time.Microsecond
	for _, c := range f.clients {
		rng := rand.New(rand.NewPCG(f.cfg.seed, uint64(c.index)+1))
		delay := time.Duration(rng.Int64N(int64(spread) + 1))
		f.wg.Go(func() { f.keepOpen(ctx, c, rng, delay) })
	}
	f.wg.Go(func() { f.watchdog(ctx) })
}

// stop ends every stream and waits for the clients' goroutines.
func (f *fleet) stop() {
	f.stopping.Store(true)
	f.cancel()
	for _, c := range f.clients {
		c.closeConn(false)
	}
	f.wg.Wait()
}

// dial opens a TCP connection from c's source address.
func (f *fleet) dial(ctx context.Context, c *client, addr string) (net.Conn, error) {
	d := f.dialer
	d.LocalAddr = c.spec.source
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &heardConn{Conn: conn, c: c, clk: f.clock}, nil
}

// heardConn notes when bytes arrive, for the watchdog.
type heardConn struct {
	net.Conn
	c   *client
	clk clock
}

func (h *heardConn) Read(p []byte) (int, error) {
	n, err := h.Conn.Read(p)
	if n > 0 {
		h.c.heard.Store(h.clk.now())
	}
	return n, err
}

// watchdog drops streams that heard nothing, not even a heartbeat, for
// -idle-timeout, as a careful client does: a stalled connection otherwise
// looks open for ever. One goroutine for all clients.
func (f *fleet) watchdog(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		limit := f.now() - int64(f.cfg.idleTimeout)
		for _, c := range f.clients {
			if c.live.Load() && c.heard.Load() < limit {
				c.closeConn(true)
			}
		}
	}
}

// waitLive waits until every client is live, or within passes.
func (f *fleet) waitLive(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		live, _ := f.live()
		if live == len(f.clients) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d clients live after %s; streams ended by: %v", live, len(f.clients), within, f.endCounts())
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// live counts the clients with an open stream, in all and per instance.
func (f *fleet) live() (int, [instanceCount]int) {
	var all int
	var per [instanceCount]int
	for _, c := range f.clients {
		if c.live.Load() {
			all++
			if i := c.instance.Load(); i >= 0 {
				per[i]++
			}
		}
	}
	return all, per
}

func (f *fleet) ended(reason string) {
	f.mu.Lock()
	f.ends[reason]++
	f.mu.Unlock()
}

func (f *fleet) failed(reason string) {
	f.mu.Lock()
	f.fails[reason]++
	f.mu.Unlock()
}

func (f *fleet) endCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.ends)
}

func (f *fleet) failCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.fails)
}

// topEnds is the most frequent reasons, for the summary.
func topEnds(m map[string]int, n int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var out []string
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
