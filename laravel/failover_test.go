package laravel_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
	"notification-service/laravel"
)

// Test timings: a short lease so a crash fails over in well under a second.
const (
	testLeaseTTL = 600 * time.Millisecond
	testGrace    = 200 * time.Millisecond
	// testLinger is longer than the 3 ms default so that the messages of
	// one EVAL, which the tests count as one broadcast, are not split
	// when a loaded machine holds the subscriber back between them.
	testLinger = 50 * time.Millisecond
)

// cluster is several instances of the service on one Redis, which is both
// Laravel's and the service's, each with its own clients.
type cluster struct {
	t   *testing.T
	srv *redistest.Server
	rec *recorder
}

func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, srv: redistest.Start(t, redistest.Options{}), rec: newRecorder()}
}

// instance starts one ingester with clients of its own, named so a test
// can find its connections in CLIENT LIST.
func (c *cluster) instance(name string) *ingester {
	laravelClient := redis.NewClient(&redis.Options{Addr: c.srv.Addr(), ClientName: name})
	lease := redis.NewClient(&redis.Options{Addr: c.srv.Addr(), ClientName: name + "-lease"})
	c.t.Cleanup(func() { laravelClient.Close(); lease.Close() })
	in := startIngester(c.t, laravel.Config{
		Client: laravelClient, Prefix: laravelPrefix, Publisher: c.rec, Logger: testLogger(c.t).With("instance", name),
		Lease: lease, LeasePrefix: "notif:", LeaseTTL: testLeaseTTL, Grace: testGrace, Linger: testLinger,
	})
	in.name, in.clients = name, []*redis.Client{laravelClient, lease}
	return in
}

// leader waits until exactly one of ins leads and returns it.
func leader(t *testing.T, ins ...*ingester) *ingester {
	t.Helper()
	var l *ingester
	streamtest.EventuallyWithin(t, ingestWait, "one leader", func() bool {
		l = nil
		n := 0
		for _, in := range ins {
			if in.Stats().Leading {
				l, n = in, n+1
			}
		}
		return n == 1
	})
	return l
}

// stream broadcasts n numbered events, one every pace, in the background;
// sent[i] is when event i was published.
type stream struct {
	sent []time.Time
	done chan struct{}
}

func (c *cluster) stream(n int, pace time.Duration) *stream {
	s := &stream{sent: make([]time.Time, n), done: make(chan struct{})}
	client := c.srv.Client()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for i := range n {
			<-tick.C
			s.sent[i] = time.Now()
			// Half on two channels: one EVAL, several messages.
			channels := []string{"tareas"}
			if i%2 == 1 {
				channels = append(channels, fmt.Sprintf("private-orders.%d", i))
			}
			laravelBroadcast(c.t, client, laravelPrefix, fmt.Sprintf(`{"event":"tarea.creada","data":{"n":%d},"socket":null}`, i), channels...)
		}
	}()
	return s
}

// outcome checks that every event of a finished stream was published
// exactly once: a last event, published after the stream ended, arrives
// after every earlier one that will arrive at all. It returns how many were
// lost and the longest delay from Laravel's publish to the service's.
func (c *cluster) outcome(s *stream) (lost int, slowest time.Duration) {
	c.t.Helper()
	<-s.done
	n := len(s.sent)
	laravelBroadcast(c.t, c.srv.Client(), laravelPrefix, fmt.Sprintf(`{"event":"fin","data":{"n":%d}}`, n), "tareas")
	var got []published
	streamtest.EventuallyWithin(c.t, ingestWait, "the last event", func() bool {
		got = c.rec.waitFor(c.t, 1)
		return got[len(got)-1].Type == "fin"
	})
	seen := make([]int, n)
	for _, p := range got[:len(got)-1] {
		i := payloadN(c.t, p.Notification)
		seen[i]++
		slowest = max(slowest, p.at.Sub(s.sent[i]))
	}
	for i, k := range seen {
		if k > 1 {
			c.t.Errorf("event %d published %d times", i, k)
		}
		if k == 0 {
			lost++
		}
	}
	return lost, slowest
}

func TestTwoInstancesPublishEachBroadcastOnce(t *testing.T) {
	is := is.New(t)
	c := newCluster(t)
	a, b := c.instance("a"), c.instance("b")
	l := leader(t, a, b)

	lost, _ := c.outcome(c.stream(300, 100*time.Microsecond))
	is.Equal(lost, 0)
	is.Equal(c.rec.repeated(), 0)
	standby := a
	if l == a {
		standby = b
	}
	is.Equal(standby.Stats().Published, uint64(0))
	streamtest.EventuallyWithin(t, ingestWait, "counted", func() bool { return l.Stats().Published == 301 })
	// It heard everything, ready to take over.
	streamtest.EventuallyWithin(t, ingestWait, "the standby heard it all", func() bool { return standby.Stats().Received == l.Stats().Received })
}

// TestHandOverLosesNothingAndDoublesNothing stops the leader mid-stream in
// each way an instance stops leading; the standby, which heard everything,
// publishes exactly what the leader left.
func TestHandOverLosesNothingAndDoublesNothing(t *testing.T) {
	tests := []struct {
		name string
		stop func(c *cluster, leader *ingester)
	}{
		{"graceful stop (SIGTERM)", func(_ *cluster, l *ingester) { l.stop() }},
		{"crash", (*cluster).crash},
		// Its subscription drops: what is published until it is back never
		// reaches it, so it steps down.
		{"subscription lost", func(c *cluster, l *ingester) { c.killConnections(l.name) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			c := newCluster(t)
			a, b := c.instance("a"), c.instance("b")
			first, other := leader(t, a, b), a
			if first == a {
				other = b
			}
			const n = 800
			s := c.stream(n, time.Millisecond)
			c.rec.waitFor(t, n/4)
			tt.stop(c, first)
			streamtest.EventuallyWithin(t, ingestWait, "the other instance leads", func() bool { return other.Stats().Leading })

			lost, slowest := c.outcome(s)
			is.Equal(lost, 0)
			// A crashed leader's lease outlives it by its TTL, which the
			// standby waits out. The bound is loose: the machine is
			// shared, and the race detector slows the catch-up.
			is.True(slowest < testLeaseTTL+5*time.Second)
			t.Logf("%s: %d broadcasts at 1/ms, lease TTL %v: lost %d, republished under the same ids %d, longest delay %v",
				tt.name, n, testLeaseTTL, lost, c.rec.repeated(), slowest)
		})
	}
}

// crash stops an instance as a kill would: it can no longer reach Redis
// (its clients are closed and its connections killed, so it renews, marks
// and releases nothing), then its goroutines end.
func (c *cluster) crash(in *ingester) {
	c.t.Helper()
	for _, client := range in.clients {
		client.Close()
	}
	c.killConnections(in.name, in.name+"-lease")
	in.stop()
}

// killConnections kills the connections of the clients named names, as a
// network failure would.
func (c *cluster) killConnections(names ...string) {
	c.t.Helper()
	ctx := context.Background()
	list, err := c.srv.Client().ClientList(ctx).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	for line := range strings.Lines(list) {
		var id, name string
		for field := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "id":
				id = v
			case "name":
				name = v
			}
		}
		if slices.Contains(names, name) {
			if err := c.srv.Client().ClientKillByFilter(ctx, "ID", id).Err(); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}
