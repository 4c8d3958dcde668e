package main

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"notification-service/scripts/internal/loopback"
)

// proxy is a TCP proxy in front of one instance that can cut or stall the
// connections going through it. It dials the instance from the client's
// own source address, so the instance's per-address limits see the clients,
// not the proxy. It owns its accept loop and two copiers per connection;
// close ends them all and waits.
type proxy struct {
	ln     net.Listener
	target string
	dialer net.Dialer
	wg     sync.WaitGroup

	mu     sync.Mutex
	pairs  map[*pair]struct{}
	closed bool
}

// pair is one client connection and its upstream.
type pair struct {
	client, upstream net.Conn
	done             chan struct{}
	once             sync.Once

	mu sync.Mutex
	// resume is non-nil while the pair is stalled: copying waits until it
	// is closed.
	resume chan struct{}
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, pairs: map[*pair]struct{}{},
		dialer: net.Dialer{Timeout: 5 * time.Second, Control: loopback.BindAddressNoPort}}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *proxy) serve(c net.Conn) {
	d := p.dialer
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		d.LocalAddr = &net.TCPAddr{IP: ta.IP}
	}
	up, err := d.Dial("tcp", p.target)
	if err != nil {
		// The instance is down: the client sees its connection end at
		// once, as with a refused connect behind a load balancer.
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
		return
	}
	pr := &pair{client: c, upstream: up, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.pairs[pr] = struct{}{}
	p.mu.Unlock()
	var copiers sync.WaitGroup
	copiers.Go(func() { pr.copy(up, c) })
	copiers.Go(func() { pr.copy(c, up) })
	copiers.Wait()
	p.mu.Lock()
	delete(p.pairs, pr)
	p.mu.Unlock()
}

// copy moves bytes from src to dst until either side ends, waiting while
// the pair is stalled; then it ends the pair.
func (pr *pair) copy(dst, src net.Conn) {
	defer pr.cut(false)
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !pr.waitFlowing() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (pr *pair) waitFlowing() bool {
	pr.mu.Lock()
	resume := pr.resume
	pr.mu.Unlock()
	if resume == nil {
		return true
	}
	select {
	case <-resume:
		return true
	case <-pr.done:
		return false
	}
}

// cut closes both sides; reset makes it an RST rather than a FIN.
func (pr *pair) cut(reset bool) {
	pr.once.Do(func() {
		if reset {
			for _, c := range []net.Conn{pr.client, pr.upstream} {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
			}
		}
		close(pr.done)
		pr.client.Close()
		pr.upstream.Close()
	})
}

// stall stops the pair's bytes in both directions for d: data piles up in
// the kernel's buffers, as behind a congested or frozen middlebox.
func (pr *pair) stall(d time.Duration) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.resume != nil {
		return false
	}
	resume := make(chan struct{})
	pr.resume = resume
	time.AfterFunc(d, func() {
		pr.mu.Lock()
		pr.resume = nil
		pr.mu.Unlock()
		close(resume)
	})
	return true
}

// proxyStats counts what the proxy did to connections.
type proxyStats struct {
	Cuts   int `json:"cuts"`
	Resets int `json:"resets"`
	Stalls int `json:"stalls"`
	// StalledFor is the stalls' total length, in seconds.
	StalledFor float64 `json:"stalled_sec"`
}

// havoc cuts or stalls a random connection rate times a second (Poisson)
// until ctx ends: a stall lasts uniformly up to maxStall; a cut is a FIN or
// an RST, half and half.
func (p *proxy) havoc(ctx context.Context, rate, stallShare float64, maxStall time.Duration, rng *rand.Rand) proxyStats {
	var st proxyStats
	for {
		if sleep(ctx, time.Duration(rng.ExpFloat64()/rate*float64(time.Second))) != nil {
			return st
		}
		pr := p.random(rng)
		if pr == nil {
			continue
		}
		switch {
		case rng.Float64() < stallShare:
			d := time.Duration(rng.Int64N(int64(maxStall))) + 100*time.Millisecond
			if pr.stall(d) {
				st.Stalls++
				st.StalledFor += d.Seconds()
			}
		case rng.IntN(2) == 0:
			pr.cut(true)
			st.Resets++
		default:
			pr.cut(false)
			st.Cuts++
		}
	}
}

func (p *proxy) random(rng *rand.Rand) *pair {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pairs) == 0 {
		return nil
	}
	k := rng.IntN(len(p.pairs))
	for pr := range p.pairs {
		if k == 0 {
			return pr
		}
		k--
	}
	return nil
}

// close stops accepting, cuts every connection and waits for the copiers.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	pairs := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		pairs = append(pairs, pr)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, pr := range pairs {
		pr.cut(false)
	}
	p.wg.Wait()
}
