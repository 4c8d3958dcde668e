package laravel_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
	"notification-service/laravel"
)

// broadcastScript is Laravel's RedisBroadcaster's script, verbatim: one
// EVAL publishes the payload (ARGV[1]) to each prefixed channel.
const broadcastScript = "for i = 2, #ARGV do\n  redis.call('publish', ARGV[i], ARGV[1])\nend"

// laravelBroadcast publishes exactly as Laravel's RedisBroadcaster does.
func laravelBroadcast(t *testing.T, c *redis.Client, prefix, payload string, channels ...string) {
	t.Helper()
	args := []any{payload}
	for _, ch := range channels {
		args = append(args, prefix+ch)
	}
	if err := c.Eval(context.Background(), broadcastScript, nil, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
		t.Errorf("eval: %v", err)
	}
}

// recorder is a Publisher that treats ids as the Redis bus does: a publish
// whose first id it has already published is answered as done and
// published again to nobody.
type recorder struct {
	mu        sync.Mutex
	published []published
	seen      map[string]bool
	repeats   int // publishes recognised by their id
	changed   chan struct{}
}

type published struct {
	broker.Notification
	at time.Time
}

func newRecorder() *recorder {
	return &recorder{seen: map[string]bool{}, changed: make(chan struct{})}
}

func (r *recorder) Publish(_ context.Context, source string, ns []broker.Notification) error {
	if source != laravel.Source {
		return errors.New("recorder: unexpected source " + source)
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[ns[0].ID] {
		r.repeats++
		return nil
	}
	r.seen[ns[0].ID] = true
	for _, n := range ns {
		r.published = append(r.published, published{n, now})
	}
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// ingestWait bounds these tests' waits on the ingester, longer than
// streamtest.WaitTimeout: a hand-over waits out a crashed leader's lease,
// then the standby catches up its backlog, on a shared machine under the
// race detector (the hand-over test allows a delay of testLeaseTTL+5s).
const ingestWait = 20 * time.Second

// waitFor waits until at least n notifications are published and returns
// them all.
func (r *recorder) waitFor(t *testing.T, n int) []published {
	t.Helper()
	deadline := time.After(ingestWait)
	for {
		r.mu.Lock()
		got, changed := r.published, r.changed
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("published %d notifications, want %d", len(got), n)
		}
	}
}

func (r *recorder) repeated() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.repeats
}

// testLogger writes warnings and errors to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// ingester is one running Ingester: as an instance of the service runs it.
type ingester struct {
	*laravel.Ingester
	cancel context.CancelFunc
	done   chan struct{}
	// name and clients, for tests that cut an instance off Redis.
	name    string
	clients []*redis.Client
}

func startIngester(t *testing.T, cfg laravel.Config) *ingester {
	t.Helper()
	in, err := laravel.NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &ingester{Ingester: in, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := in.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(r.stop)
	streamtest.EventuallyWithin(t, ingestWait, "subscribed", func() bool { return in.Stats().Subscriptions > 0 })
	return r
}

// stop is a graceful stop (SIGTERM): it returns once Run has.
func (r *ingester) stop() {
	r.cancel()
	<-r.done
}

func memoryConfig(c *redis.Client, rec *recorder, log *slog.Logger) laravel.Config {
	return laravel.Config{Client: c, Prefix: laravelPrefix, Publisher: rec, Logger: log, Linger: testLinger}
}

func TestIngesterPublishesWhatLaravelPublishes(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	laravelRedis := srv.Client()
	rec := newRecorder()
	in := startIngester(t, memoryConfig(srv.Client(), rec, testLogger(t)))

	var want []laravel.Broadcast
	for i, sc := range scenarios {
		f := loadFixture(t, sc.name)
		var channels []string
		for _, m := range f.Messages {
			channels = append(channels, strings.TrimPrefix(m.Channel, f.Prefix))
		}
		laravelBroadcast(t, laravelRedis, laravelPrefix, f.Messages[0].Payload, channels...)
		want = append(want, fixtureBroadcast(t, sc.name))
		if i == 1 {
			// Refused messages are logged and counted, and nothing stops.
			laravelBroadcast(t, laravelRedis, laravelPrefix, `{"data":[],"socket":null}`, "tareas")
			laravelBroadcast(t, laravelRedis, laravelPrefix, `not json`, "tareas", "otro")
			laravelBroadcast(t, laravelRedis, laravelPrefix, `{"event":"e","data":"x"}`, "tareas")
		}
	}
	// Other apps' channels on the same Redis are not Laravel's.
	is.NoErr(laravelRedis.Publish(context.Background(), "otra_app_tareas", `{"event":"e","data":[]}`).Err())

	got := rec.waitFor(t, len(want))
	for i, b := range want {
		ns, err := laravel.Mapping{}.Notifications(b)
		is.NoErr(err)
		n := got[i].Notification
		is.True(n.ID != "") // chosen before publishing, so a retry keeps it
		if ns[0].ID != "" {
			is.Equal(n.ID, ns[0].ID) // Laravel's notification UUID
		}
		n.ID, ns[0].ID = "", ""
		is.Equal(n, ns[0])
	}
	is.Equal(len(got[1].Channels), 4) // the four messages of one EVAL: one notification
	// The counts move just after the publisher returns.
	streamtest.EventuallyWithin(t, ingestWait, "counted", func() bool {
		st := in.Stats()
		return st.Invalid == 3 && st.Published == uint64(len(want))
	})
	is.Equal(in.Stats().Received, uint64(9+4)) // the fixtures' 9 messages, the refused broadcasts' 4
}

func TestIngesterGroupsTheMessagesOfOneEVAL(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	rec := newRecorder()
	startIngester(t, memoryConfig(srv.Client(), rec, testLogger(t)))
	c := srv.Client()
	p := func(event string) string { return `{"event":"` + event + `","data":{"k":1},"socket":null}` }
	// The same payload again on a channel it was just published to is
	// another broadcast.
	laravelBroadcast(t, c, laravelPrefix, p("p"), "a")
	laravelBroadcast(t, c, laravelPrefix, p("p"), "a", "b")
	// One EVAL naming a channel twice publishes there twice, as Pusher
	// would deliver it twice.
	laravelBroadcast(t, c, laravelPrefix, p("q"), "c", "c")
	// Two EVALs of one payload on different channels, back to back, look
	// exactly like one EVAL on both: one notification on both channels,
	// which every subscriber of either still receives once.
	laravelBroadcast(t, c, laravelPrefix, p("r"), "x")
	laravelBroadcast(t, c, laravelPrefix, p("r"), "y")
	laravelBroadcast(t, c, laravelPrefix, `{"event":"fin","data":[]}`, "a")
	got := rec.waitFor(t, 6)
	var channels [][]string
	for _, p := range got {
		channels = append(channels, p.Channels)
	}
	is.Equal(channels, [][]string{{"a"}, {"a", "b"}, {"c"}, {"c"}, {"x", "y"}, {"a"}})
}

func TestIngesterSubscribesAgainAfterRedisRestarts(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	// A file takes the ingester's goroutines' writes and the test's read
	// without a data race.
	logs, err := os.CreateTemp(t.TempDir(), "log")
	is.NoErr(err)
	rec := newRecorder()
	in := startIngester(t, memoryConfig(srv.Client(), rec, slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), nil))))

	laravelBroadcast(t, srv.Client(), laravelPrefix, `{"event":"uno","data":[]}`, "c")
	rec.waitFor(t, 1)
	srv.Stop()
	srv.Restart()
	streamtest.EventuallyWithin(t, ingestWait, "subscribed again", func() bool { return in.Stats().Subscriptions == 2 })
	laravelBroadcast(t, srv.Client(), laravelPrefix, `{"event":"dos","data":[]}`, "c")
	got := rec.waitFor(t, 2)
	is.Equal(got[1].Type, "dos")
	logged, err := os.ReadFile(logs.Name())
	is.NoErr(err)
	is.True(strings.Contains(string(logged), "subscription lost"))
	is.True(strings.Contains(string(logged), "subscribed again"))
}

// payloadN reads the test's sequence number from a notification's data.
func payloadN(t *testing.T, n broker.Notification) int {
	t.Helper()
	var d struct{ N int }
	if err := json.Unmarshal(n.Data, &d); err != nil {
		t.Fatalf("data %s: %v", n.Data, err)
	}
	return d.N
}

// TestIngesterReplacesASilentConnection: a connection that stops carrying
// anything, without closing (a half-open TCP connection, a frozen proxy),
// is noticed by an unanswered ping and replaced.
func TestIngesterReplacesASilentConnection(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	proxy := startFreezingProxy(t, srv.Addr())
	rec := newRecorder()
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.addr()})
	t.Cleanup(func() { viaProxy.Close() })
	in := startIngester(t, memoryConfig(viaProxy, rec, testLogger(t)))

	laravelBroadcast(t, srv.Client(), laravelPrefix, `{"event":"uno","data":[]}`, "c")
	rec.waitFor(t, 1)
	proxy.freeze()
	streamtest.EventuallyWithin(t, ingestWait, "a new subscription", func() bool { return in.Stats().Subscriptions == 2 })
	laravelBroadcast(t, srv.Client(), laravelPrefix, `{"event":"dos","data":[]}`, "c")
	is.Equal(rec.waitFor(t, 2)[1].Type, "dos")
}

// freezingProxy forwards TCP connections to a server until freeze, after
// which the connections open so far carry nothing more in either direction
// but stay open; new connections work.
type freezingProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen []*atomic.Bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startFreezingProxy(t *testing.T, target string) *freezingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln}
	p.wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			frozen := new(atomic.Bool)
			p.mu.Lock()
			p.frozen = append(p.frozen, frozen)
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			p.wg.Go(func() { pipe(server, client, frozen) })
			p.wg.Go(func() { pipe(client, server, frozen) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *freezingProxy) addr() string { return p.ln.Addr().String() }

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frozen {
		f.Store(true)
	}
}

// pipe copies src to dst, dropping what it reads once frozen.
func pipe(dst, src net.Conn, frozen *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if frozen.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}
