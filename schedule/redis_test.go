package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
	"notification-service/store"
)

func TestRedis(t *testing.T) {
	// One server for the whole contract; every scheduler gets its own
	// prefix, so they also prove that prefixes keep instances apart (each
	// Run sees the others' expiry events and must ignore them).
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	var n atomic.Int64
	testScheduler(t, func(t *testing.T, limits Limits) Scheduler {
		s := newRedis(t, srv, fmt.Sprintf("contract%d:", n.Add(1)))
		s.limits = limits
		return s
	})
}

// newRedis returns a prepared Redis scheduler on srv with a client of its
// own, closed when the test ends.
func newRedis(t testing.TB, srv *redistest.Server, prefix string) *Redis {
	t.Helper()
	s := NewRedis(openClient(t, srv), RedisOptions{Prefix: redisconn.Prefix(prefix), Logger: testLogger(t)})
	if err := s.Prepare(t.Context()); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return s
}

// openClient opens a client as the service does (failing fast when Redis is
// down), closed when the test ends.
func openClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	opts, err := redisconn.ParseURL(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	client := redisconn.Open(opts)
	t.Cleanup(func() { client.Close() })
	return client
}

// testLogger shows warnings and errors in the test's output (with -v or on
// failure).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// schedKeys lists what the scheduler keeps under prefix, so a test can
// check that a fired item leaves nothing behind.
func schedKeys(t testing.TB, client *redis.Client, prefix string) []string {
	t.Helper()
	keys, err := client.Keys(context.Background(), prefix+"sched:*").Result()
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	return keys
}

// runUntil runs s with fire until stop is called or the test ends, and
// stop waits for Run to return nil.
func runUntil(t *testing.T, s Scheduler, fire FireFunc) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, fire) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(eventTimeout):
				t.Error("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestRedisFiresWithoutBackgroundExpiry switches off Redis's background
// expiry cycle: items still fire on time, because the timer's touch expires
// their triggers, so delivery never waits for Redis to sample a key.
func TestRedisFiresWithoutBackgroundExpiry(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	admin := srv.Client()
	is.NoErr(admin.Do(ctx, "DEBUG", "SET-ACTIVE-EXPIRE", "0").Err())
	// Expired long before the items, and never touched: it stays in the
	// keyspace only if the background cycle is really off.
	is.NoErr(admin.Set(ctx, "control", "1", time.Millisecond).Err())

	s := newRedis(t, srv, "noactive:")
	rec := startRun(t, s)
	const n = 20
	base := broker.Now().Add(time.Second) // after the last Add has returned
	want := make(map[string]Item)
	for i := range n {
		it := newItem(base.Add(time.Duration(i*10)*time.Millisecond), "alice")
		want[it.ID] = it
		is.NoErr(s.Add(ctx, it))
	}
	for range n {
		f := rec.next(t)
		it, ok := want[f.Item.ID]
		is.True(ok) // each item fires once
		delete(want, f.Item.ID)
		late := f.At.Sub(it.ScheduledAt)
		is.True(late >= 0)          // not early
		is.True(late < maxLateness) // on time without the background cycle
	}
	streamtest.Eventually(t, "the fired items' keys to go", func() bool { return len(schedKeys(t, admin, "noactive:")) == 0 })
	size, err := admin.DBSize(ctx).Result()
	is.NoErr(err)
	is.Equal(size, int64(1)) // only the control key: the background cycle never ran
}

// TestRedisInstancesFireEachOnce runs three instances on one Redis, each
// with its own client: every item fires exactly once overall, including
// the ones whose first fire fails.
func TestRedisInstancesFireEachOnce(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	admin := srv.Client()
	const prefix, n = "multi:", 1000
	var scheds []*Redis
	for range 3 {
		scheds = append(scheds, newRedis(t, srv, prefix))
	}
	goroutines := runtime.NumGoroutine()

	var (
		mu     sync.Mutex
		fired  = make(map[string]int) // successful fires per id
		failed = make(map[string]int) // failed fires per id
		failOn = make(map[string]bool)
	)
	done := make(chan struct{})
	fire := func(_ context.Context, it Item) error {
		mu.Lock()
		defer mu.Unlock()
		if failOn[it.ID] && failed[it.ID] == 0 {
			failed[it.ID]++
			return errors.New("test: publish failed")
		}
		fired[it.ID]++
		if len(fired) == n {
			close(done)
		}
		return nil
	}
	var stops []func()
	for _, s := range scheds {
		stops = append(stops, runUntil(t, s, fire))
	}

	base := broker.Now().Add(300 * time.Millisecond)
	for i := range n {
		it := newItem(base.Add(time.Duration(i)*time.Millisecond), "alice")
		if i%50 == 0 {
			mu.Lock()
			failOn[it.ID] = true
			mu.Unlock()
		}
		is.NoErr(scheds[i%3].Add(ctx, it))
	}
	select {
	case <-done:
	case <-time.After(eventTimeout):
		mu.Lock()
		t.Fatalf("%d of %d items fired", len(fired), n)
	}
	// Once every item is acked nothing is left to claim, so no fire can
	// still be on its way.
	streamtest.Eventually(t, "every item to be acked", func() bool { return len(schedKeys(t, admin, prefix)) == 0 })
	mu.Lock()
	for id, count := range fired {
		if count != 1 {
			t.Errorf("item %s fired %d times", id, count)
		}
	}
	for id := range failOn {
		is.Equal(failed[id], 1) // failed once, then retried
	}
	mu.Unlock()

	for _, stop := range stops {
		stop()
	}
	// Every goroutine Run started has ended (go-redis's subscription
	// goroutines included).
	streamtest.Eventually(t, "Run's goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
}

// TestRedisAnotherInstanceFires stops the instance that would have fired an
// item before it is due, in two ways: its Run ends, or its connection to
// Redis is gone. The other instance delivers it.
func TestRedisAnotherInstanceFires(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	for _, how := range []string{"run stopped", "client closed"} {
		t.Run(how, func(t *testing.T) {
			is := is.New(t)
			prefix := strings.ReplaceAll(how, " ", "-") + ":"
			client := openClient(t, srv)
			gone := NewRedis(client, RedisOptions{Prefix: redisconn.Prefix(prefix), Logger: testLogger(t)})
			stopGone := runUntil(t, gone, func(context.Context, Item) error {
				t.Error("the stopped instance fired")
				return nil
			})
			other := newRedis(t, srv, prefix)
			rec := startRun(t, other)

			it := newItem(broker.Now().Add(time.Second), "alice")
			is.NoErr(gone.Add(t.Context(), it))
			if how == "run stopped" {
				stopGone()
			} else {
				client.Close()
			}
			f := rec.next(t)
			is.Equal(f.Item, it)
			is.True(f.At.Sub(it.ScheduledAt) < maxLateness)
			rec.drain(t, other)
		})
	}
}

// TestRedisLeaseExpires simulates an instance that dies between firing an
// item and acking it: once the lease runs out, another instance fires it
// again (at least once in that window).
func TestRedisLeaseExpires(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	const prefix = "lease:"
	crashed := newRedis(t, srv, prefix)
	crashed.lease = 300 * time.Millisecond
	crashCtx, crash := context.WithCancel(context.Background())
	firedOnce := make(chan Item, 1)
	runDone := make(chan error, 1)
	go func() {
		runDone <- crashed.Run(crashCtx, func(_ context.Context, it Item) error {
			// Published, then the process dies before it can ack.
			crashed.client.Close()
			crash()
			firedOnce <- it
			return nil
		})
	}()
	it := newItem(broker.Now().Add(50*time.Millisecond), "alice")
	is.NoErr(crashed.Add(ctx, it))
	var first Item
	select {
	case first = <-firedOnce:
	case <-time.After(eventTimeout):
		t.Fatal("the first instance did not fire")
	}
	is.Equal(first, it)
	select {
	case err := <-runDone:
		is.NoErr(err)
	case <-time.After(eventTimeout):
		t.Fatal("Run did not return")
	}

	survivor := newRedis(t, srv, prefix)
	_, err := survivor.Get(ctx, it.ID)
	is.True(errors.Is(err, ErrNotFound)) // in flight: not pending
	rec := startRun(t, survivor)
	f := rec.next(t)
	is.Equal(f.Item, it)
	// Not before the lease ran out, and soon after.
	leaseEnd := first.ScheduledAt.Add(crashed.lease)
	is.True(f.At.After(leaseEnd))
	is.True(f.At.Sub(leaseEnd) < time.Second)
	rec.drain(t, survivor)
	streamtest.Eventually(t, "the item to be acked", func() bool { return len(schedKeys(t, srv.Client(), prefix)) == 0 })
}

// TestRedisCatchUpAtStart adds items while no scheduler runs; their expiry
// events go to nobody. The first Run fires them at once.
func TestRedisCatchUpAtStart(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	s := newRedis(t, srv, "start:")
	want := make(map[string]bool)
	for i := range 5 {
		it := newItem(broker.Now().Add(-time.Duration(i+1)*time.Second), "alice")
		want[it.ID] = true
		is.NoErr(s.Add(ctx, it))
	}
	started := time.Now()
	rec := startRun(t, s)
	for range len(want) {
		f := rec.next(t)
		is.True(want[f.Item.ID])
		delete(want, f.Item.ID)
		is.True(f.At.Sub(started) < time.Second) // the catch-up, not a grace period
	}
	rec.drain(t, s)
}

// TestRedisRestart stops Redis with items pending: while it is down the
// scheduler answers ErrUnavailable and Run keeps going; when it returns,
// the items that came due meanwhile fire, and new ones fire on time (the
// expiry events were turned on again).
func TestRedisRestart(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{Persistent: true, ValidOn: redisconn.MinVersion})
	s := newRedis(t, srv, "restart:")
	rec := startRun(t, s)
	due := broker.Now().Add(300 * time.Millisecond)
	want := make(map[string]bool)
	for range 3 {
		it := newItem(due, "alice")
		want[it.ID] = true
		is.NoErr(s.Add(ctx, it))
	}
	srv.Stop()

	it := newItem(broker.Now().Add(time.Hour), "bob")
	err := s.Add(ctx, it)
	is.True(errors.Is(err, store.ErrUnavailable))
	_, err = s.Get(ctx, it.ID)
	is.True(errors.Is(err, store.ErrUnavailable))
	_, err = s.List(ctx, Query{UserID: "alice", Limit: 1})
	is.True(errors.Is(err, store.ErrUnavailable))
	_, err = s.Cancel(ctx, it.ID)
	is.True(errors.Is(err, store.ErrUnavailable))

	// Stay down past the due time: the events of those items are lost.
	time.Sleep(time.Until(due.Add(200 * time.Millisecond)))
	srv.Restart()
	for range len(want) {
		f := rec.next(t)
		is.True(want[f.Item.ID])
		delete(want, f.Item.ID)
	}

	// A restarted Redis forgets CONFIG SET: Run turned the events on again.
	flags, err := srv.Client().ConfigGet(ctx, "notify-keyspace-events").Result()
	is.NoErr(err)
	is.Equal(withExpiryEvents(flags["notify-keyspace-events"]), flags["notify-keyspace-events"])
	soon := newItem(broker.Now().Add(time.Second), "alice")
	is.NoErr(s.Add(ctx, soon))
	f := rec.next(t)
	is.Equal(f.Item, soon)
	is.True(f.At.Sub(soon.ScheduledAt) < maxLateness)
	rec.drain(t, s)
}

// TestRedisLostEventsCaughtUp turns expiry events off behind the
// scheduler's back: items still fire, about overdueGrace late, claimed by
// the timer pass.
func TestRedisLostEventsCaughtUp(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	s := newRedis(t, srv, "lost:")
	s.overdueGrace = 200 * time.Millisecond
	rec := startRun(t, s)
	// Past the catch-up at start-up: from here only events or the timer
	// pass fire anything.
	rec.drain(t, s)
	is.NoErr(srv.Client().ConfigSet(ctx, "notify-keyspace-events", "").Err())

	it := newItem(broker.Now().Add(time.Second), "alice")
	is.NoErr(s.Add(ctx, it))
	f := rec.next(t)
	is.Equal(f.Item, it)
	late := f.At.Sub(it.ScheduledAt)
	is.True(late >= s.overdueGrace)
	is.True(late < s.overdueGrace+staleRecheck+maxLateness)
}

// TestRedisQueueOverflow makes the claim queue overflow: the dropped events
// are counted, and the catch-up they trigger fires every item once.
func TestRedisQueueOverflow(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	s := newRedis(t, srv, "overflow:")
	s.queueSize = 1
	release := make(chan struct{})
	var once sync.Once
	rec := &recorder{calls: make(chan fired, 1024), fails: make(map[string]int)}
	runWith(t, s, func(ctx context.Context, it Item) error {
		// Hold the worker on the first item while the events pile up.
		once.Do(func() { <-release })
		return rec.fire(ctx, it)
	})

	const n = 200
	due := broker.Now().Add(100 * time.Millisecond)
	want := make(map[string]bool)
	for range n {
		it := newItem(due, "alice")
		want[it.ID] = true
		is.NoErr(s.Add(ctx, it))
	}
	streamtest.Eventually(t, "an event to be dropped", func() bool { return s.DroppedEvents() > 0 })
	close(release)
	for range n {
		f := rec.next(t)
		is.True(want[f.Item.ID]) // each once
		delete(want, f.Item.ID)
	}
	rec.drain(t, s)
}

// TestRedisRunWhileDown starts Run with Redis down: it keeps trying, and
// fires what is due once Redis is there.
func TestRedisRunWhileDown(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{Persistent: true, ValidOn: redisconn.MinVersion})
	s := newRedis(t, srv, "down:")
	it := newItem(broker.Now().Add(-time.Minute), "alice")
	is.NoErr(s.Add(ctx, it))
	srv.Stop()
	rec := startRun(t, s)
	srv.Restart()
	is.Equal(rec.next(t).Item, it)
	rec.drain(t, s)
}
