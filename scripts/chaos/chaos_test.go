package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestBackoffIsFullJitterUnderTheCap(t *testing.T) {
	is := is.New(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for attempt := range 40 {
		ceiling := min(5*time.Second, 250*time.Millisecond<<min(attempt, 20))
		var most time.Duration
		for range 200 {
			d := backoff(rng, attempt, 250*time.Millisecond, 5*time.Second)
			is.True(d >= 0 && d <= ceiling) // within [0, min(max, base*2^attempt)]
			most = max(most, d)
		}
		is.True(most > ceiling/2) // spread over the whole range, not stuck low
	}
}

func testLayout(t *testing.T) *layout {
	t.Helper()
	cfg := defaults()
	cfg.clients, cfg.users, cfg.channels, cfg.maxHeld, cfg.perSource = 30, 20, 5, 3, 10
	return newLayout(cfg, "run1", rand.New(rand.NewPCG(3, 4)))
}

func TestRecipientsFollowTheRoutingRule(t *testing.T) {
	is := is.New(t)
	l := testLayout(t)
	holds := func(i int32, ch int) bool {
		for _, c := range l.clients[i].channels {
			if c == ch {
				return true
			}
		}
		return false
	}
	for u := range 20 {
		// A user's notification without channels: every client of the user.
		is.Equal(len(l.recipients([]int{u}, nil)), len(l.byUser[u]))
		for ch := range 5 {
			// Naming a channel: only the user's clients holding it.
			for _, i := range l.recipients([]int{u}, []int{ch}) {
				is.Equal(l.clients[i].user, u)
				is.True(holds(i, ch))
			}
		}
	}
	// A broadcast on two channels reaches each holder once.
	got := l.recipients(nil, []int{0, 1})
	want := 0
	for i := range l.clients {
		if holds(int32(i), 0) || holds(int32(i), 1) {
			want++
		}
	}
	is.Equal(len(got), want)
	// Users 0..9 have two clients (tabs) on different instances.
	for u := range 10 {
		is.Equal(len(l.byUser[u]), 2)
		is.True(l.clients[l.byUser[u][0]].home != l.clients[l.byUser[u][1]].home)
	}
	is.Equal(l.clients[29].source.IP.String(), "127.0.0.4") // 10 per source from 127.0.0.2
}

func notification(n int, cursor string) []byte {
	return []byte(`{"event":"notification","cursor":"` + cursor + `","id":"x","type":"chaos","title":"cx-run1-` + itoa(n) + `"}`)
}

func TestClientCountsDuplicatesOrderAndCatchUp(t *testing.T) {
	is := is.New(t)
	c := &client{}
	c.onReady([]byte(`{"event":"ready","cursor":"e1-10"}`))
	c.expect(5, 0)
	c.expect(7, 1)
	c.expect(9, 2)
	is.True(!c.caughtUp(1)) // nothing received yet

	c.onNotification(5, notification(5, "e1-11"), 100)
	is.True(c.caughtUp(1))  // holds the first acceptance
	is.True(!c.caughtUp(2)) // not the second
	c.onNotification(9, notification(9, "e1-13"), 110)
	c.onNotification(7, notification(7, "e1-12"), 120) // an older cursor after a newer one
	c.onNotification(9, notification(9, "e1-13"), 130) // again
	is.True(c.caughtUp(3))
	is.Equal(c.dup, 1)
	is.Equal(c.outOfOrder, 1)
	is.Equal(len(c.receipts), 3)
	is.Equal(c.resumeCursor(), "e1-13") // the last id the stream gave, as EventSource keeps it

	// A new epoch (Redis lost its data) is counted, and order restarts.
	c.onReady([]byte(`{"event":"ready","cursor":"e2-1"}`))
	c.onNotification(11, notification(11, "e2-2"), 140)
	is.Equal(c.epochChanges, 1)
	is.Equal(c.outOfOrder, 1)
	is.Equal(c.sessions, 2)
}

func TestSplitCursor(t *testing.T) {
	is := is.New(t)
	e, s := splitCursor([]byte("abc123-42"))
	is.Equal(string(e), "abc123")
	is.Equal(s, uint64(42))
	e, s = splitCursor([]byte("nodash"))
	is.Equal(e, []byte(nil))
	is.Equal(s, uint64(0))
	_, s = splitCursor([]byte("e-4x"))
	is.Equal(s, uint64(0))
}

func TestLedgerOrdersAcceptances(t *testing.T) {
	is := is.New(t)
	clients := []*client{{index: 0}, {index: 1}}
	led := newLedger(clients)
	led.accept(&send{n: 3, recipients: []int32{0, 1}}, 1, 2, false)
	led.accept(&send{n: 1, recipients: []int32{1}}, 3, 4, true)
	is.Equal(led.acceptedSoFar(), int32(2))
	is.Equal(clients[0].expected, []expectation{{n: 3, accepted: 0}})
	is.Equal(clients[1].expected, []expectation{{n: 3, accepted: 0}, {n: 1, accepted: 1}})
}

func TestSendOutcome(t *testing.T) {
	is := is.New(t)
	is.Equal(sendOutcome(201, "", nil), send201)
	is.Equal(sendOutcome(409, "idempotency_in_progress", nil), send409InProgress)
	is.Equal(sendOutcome(409, "idempotency_key_reused", nil), send409Other)
	is.Equal(sendOutcome(503, "store_unavailable", nil), send503)
	is.Equal(sendOutcome(500, "internal", nil), send5xx)
	is.Equal(sendOutcome(429, "rate_limited", nil), send429)
	is.Equal(sendOutcome(400, "validation_failed", nil), send4xx)
	is.Equal(sendOutcome(0, "", context.DeadlineExceeded), sendTimeout)
	is.Equal(sendOutcome(0, "", io.ErrUnexpectedEOF), sendConnError)
}

func TestEventsCountPerWindow(t *testing.T) {
	is := is.New(t)
	var e events
	e.add(connect429, 10)
	e.add(connect429, 20)
	e.add(send503, 30)
	is.Equal(e.count(0, 25), map[string]int{"connect_429": 2})
	is.Equal(e.count(0, 100), map[string]int{"connect_429": 2, "send_503": 1})
}

func TestSpread(t *testing.T) {
	is := is.New(t)
	is.Equal(spreadOf([]int{5, 1, 3}), spread{Min: 1, P50: 3, P99: 5, Max: 5})
	is.Equal(spreadOf(nil), spread{})
}

func TestFDBudgetFitsTheDefaultScale(t *testing.T) {
	is := is.New(t)
	is.True(fdNeed(defaults().clients) <= 20_000) // the machine's per-process limit
	is.True(fdNeed(maxClientsFor(20_000)) <= 20_000)
	is.True(fdNeed(maxClientsFor(20_000)+100) > 20_000)
}

// echoServer accepts connections and echoes what it reads, until the test
// ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestProxyPassesStallsAndCuts(t *testing.T) {
	is := is.New(t)
	p, err := newProxy(echoServer(t))
	is.NoErr(err)
	defer p.close()
	c, err := net.Dial("tcp", p.addr())
	is.NoErr(err)
	defer c.Close()
	roundTrip := func(within time.Duration) error {
		_ = c.SetDeadline(time.Now().Add(within))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		_, err := io.ReadFull(c, b)
		return err
	}
	is.NoErr(roundTrip(2 * time.Second)) // passes through

	var pr *pair
	for pr == nil { // the pair registers just after the accept
		pr = p.random(rand.New(rand.NewPCG(1, 1)))
	}
	is.True(pr.stall(300 * time.Millisecond))
	began := time.Now()
	is.NoErr(roundTrip(2 * time.Second)) // arrives, late
	is.True(time.Since(began) >= 250*time.Millisecond)

	pr.cut(true)
	is.True(roundTrip(2*time.Second) != nil) // cut: the client sees its connection end
}

func TestProxyDialsFromTheClientsAddress(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	defer ln.Close()
	p, err := newProxy(ln.Addr().String())
	is.NoErr(err)
	defer p.close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9)}}
	c, err := d.Dial("tcp", p.addr())
	is.NoErr(err)
	defer c.Close()
	up, err := ln.Accept()
	is.NoErr(err)
	defer up.Close()
	is.Equal(up.RemoteAddr().(*net.TCPAddr).IP.String(), "127.0.0.9") // the instance sees the client, not the proxy
}

func TestJudgeFailsOnEveryBrokenPromise(t *testing.T) {
	is := is.New(t)
	ok := (&result{}).judge()
	is.True(ok.OK)
	bad := &result{Deliveries: deliveryFigs{Lost: 1, Phantom: 2}, Clients: clientFigures{DisconnectedAtEnd: 1, Resets: 1}}
	bad.judge()
	is.True(!bad.OK)
	is.Equal(len(bad.Failures), 4)
}

func TestInstancesKeepTheirOwnPort(t *testing.T) {
	is := is.New(t)
	env := make([]string, 1, 8) // room to grow: appends must not share it
	env[0] = "REDIS_URL=x"
	a := newInstance(0, "bin", t.TempDir(), 1001, env)
	b := newInstance(1, "bin", t.TempDir(), 1002, env)
	is.Equal(a.env, []string{"REDIS_URL=x", "PORT=1001"})
	is.Equal(b.env, []string{"REDIS_URL=x", "PORT=1002"})
}

// TestRefusalEvent: a connect refused as an event stream (what the service
// answers an EventSource over a connect limit) counts as the 429 or 503 it
// stands for and carries the wait it names; other error events do not.
func TestRefusalEvent(t *testing.T) {
	is := is.New(t)
	se, ok := refusalEvent([]byte("error"), []byte(`{"event":"error","code":"rate_limited","message":"too many connects","retry_after_ms":1375}`))
	is.True(ok)
	is.Equal(se.status, 429)
	is.Equal(se.retryAfter, 1375*time.Millisecond)
	is.Equal(connectFailure(se), connect429)
	se, ok = refusalEvent([]byte("error"), []byte(`{"event":"error","code":"shutting_down","retry_after_ms":1000}`))
	is.True(ok)
	is.Equal(connectFailure(se), connect503)
	_, ok = refusalEvent([]byte("error"), []byte(`{"event":"error","code":"token_expired"}`))
	is.True(!ok)
	_, ok = refusalEvent([]byte("ready"), []byte(`{"event":"ready"}`))
	is.True(!ok)
}
