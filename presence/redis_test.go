package presence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
	"notification-service/store"
)

// prefixes numbers the prefixes of the stores tests make, so stores sharing
// one server never see each other's keys unless a test means them to.
var prefixes atomic.Int64

// hostilePrefix is a fresh prefix full of what could break a key built in
// Lua: quotes, a backslash, braces, a space, a newline, '%'.
func hostilePrefix() redisconn.Prefix {
	return redisconn.Prefix(fmt.Sprintf("t%d \"'\\{x}\n%%s:", prefixes.Add(1)))
}

// Bounds of the tests' instances: short, so a lapse takes a fraction of a
// second, and far enough apart that a loaded machine does not kill a live
// instance.
const (
	testHeartbeat = 50 * time.Millisecond
	testLapse     = 400 * time.Millisecond
)

func newTestRedis(client *redis.Client, prefix redisconn.Prefix, maxMembers int) *Redis {
	return NewRedis(client, RedisOptions{Prefix: prefix, MaxMembers: maxMembers, Heartbeat: testHeartbeat, Lapse: testLapse})
}

func TestRedis(t *testing.T) {
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	testStore(t, func(t *testing.T, maxMembers int) Store {
		return newTestRedis(client, hostilePrefix(), maxMembers)
	})
}

// recorder collects what Run reports, from any number of instances.
type recorder struct {
	mu      sync.Mutex
	reports []report
	changed chan struct{} // signalled after every report
	lapses  atomic.Int64
}

// report is one Events.Removed call: what, by which instance, when.
type report struct {
	removal
	by string
	at time.Time
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

// events reports as the instance named by.
func (rec *recorder) events(by string) Events {
	return Events{
		Removed: func(c, u string) {
			rec.mu.Lock()
			rec.reports = append(rec.reports, report{removal{c, u}, by, time.Now()})
			rec.mu.Unlock()
			rec.signal()
		},
		Lapsed: func() {
			rec.lapses.Add(1)
			rec.signal()
		},
	}
}

func (rec *recorder) signal() {
	select {
	case rec.changed <- struct{}{}:
	default:
	}
}

// sorted returns the removals reported so far, in order.
func (rec *recorder) sorted() []removal {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var got []removal
	for _, r := range rec.reports {
		got = append(got, r.removal)
	}
	slices.SortFunc(got, compareRemovals)
	return got
}

func (rec *recorder) all() []report {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reports)
}

// waitFor waits until cond holds, looking again at each report, failing
// the test after timeout.
func (rec *recorder) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-rec.changed:
		case <-deadline:
			t.Fatalf("%s: not within %s", what, timeout)
		}
	}
}

// run starts s.Run until the test ends or stop is called; stop waits for
// Run to return and gives its error.
func run(t *testing.T, s Store, events Events) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, events) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("Run did not return within 10s of its context ending")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestRedisTwoInstancesSeeOneMembership(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	prefix := hostilePrefix()
	a, b := newTestRedis(client, prefix, 0), newTestRedis(client, prefix, 2)
	ann := Member{UserID: "ann", Info: []byte(`{"tab":1}`)}

	_, added := join(t, a, "presence-room", "1.1", ann)
	is.True(added)
	ann.Info = []byte(`{"tab":2}`)
	ms, added := join(t, b, "presence-room", "2.1", ann) // Ann's second tab, on the other instance
	is.True(!added)
	is.Equal(ms, []Member{ann})
	is.Equal(members(t, a, "presence-room"), []Member{ann})

	_, added = join(t, a, "presence-room", "1.2", Member{UserID: "bob"})
	is.True(added)
	// b's bound counts the members a recorded.
	_, _, err := b.Join(t.Context(), "presence-room", "2.2", Member{UserID: "carol"})
	is.True(errors.Is(err, ErrFull))

	user, removed := leave(t, b, "presence-room", "1.1") // any instance may end any connection
	is.Equal(user, "ann")
	is.True(!removed)
	user, removed = leave(t, a, "presence-room", "2.1")
	is.Equal(user, "ann")
	is.True(removed)
	is.Equal(members(t, b, "presence-room"), []Member{{UserID: "bob"}})
}

// TestRedisConcurrentJoinsOnTwoInstances races one user's connections on
// two instances: exactly one join adds, exactly one leave removes.
func TestRedisConcurrentJoinsOnTwoInstances(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	prefix := hostilePrefix()
	stores := []Store{newTestRedis(client, prefix, 0), newTestRedis(client, prefix, 0)}
	const conns = 50
	var adds, removes atomic.Int64
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			_, added, err := stores[i%2].Join(t.Context(), "presence-room", fmt.Sprintf("%d.%d", i, i), Member{UserID: "ann"})
			if err != nil {
				t.Error(err)
			}
			if added {
				adds.Add(1)
			}
		})
	}
	wg.Wait()
	is.Equal(adds.Load(), int64(1))
	for i := range conns {
		wg.Go(func() {
			_, removed, err := stores[(i+1)%2].Leave(t.Context(), "presence-room", fmt.Sprintf("%d.%d", i, i))
			if err != nil {
				t.Error(err)
			}
			if removed {
				removes.Add(1)
			}
		})
	}
	wg.Wait()
	is.Equal(removes.Load(), int64(1))
	is.Equal(members(t, stores[0], "presence-room"), []Member{})
}

// TestRedisStopRemovesOnlyItsOwnMemberships stops one of two instances:
// its members go, reported once, and a user it shares with the other
// instance stays.
func TestRedisStopRemovesOnlyItsOwnMemberships(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	prefix := hostilePrefix()
	a, b := newTestRedis(client, prefix, 0), newTestRedis(client, prefix, 0)
	rec := newRecorder()
	stopA := run(t, a, rec.events("a"))
	stopB := run(t, b, rec.events("b"))

	join(t, a, "presence-room", "1.1", Member{UserID: "ann"})
	join(t, a, "presence-room", "1.2", Member{UserID: "bob"})
	join(t, a, "presence-hall", "1.1", Member{UserID: "ann"})
	join(t, b, "presence-room", "2.1", Member{UserID: "bob"}) // Bob's other tab

	is.NoErr(stopA())
	// a's Run reported before returning, unless b's sweep took some first
	// (a's id is dead once a stops).
	want := []removal{{"presence-hall", "ann"}, {"presence-room", "ann"}}
	rec.waitFor(t, 5*time.Second, "a's members reported", func() bool { return len(rec.sorted()) >= len(want) })
	is.Equal(members(t, b, "presence-room"), []Member{{UserID: "bob"}})
	is.Equal(members(t, b, "presence-hall"), []Member{})
	is.Equal(client.ZScore(t.Context(), a.instancesKey(), a.gen.Load().id).Err(), redis.Nil) // a is gone

	// Once b has stopped too, every report is in: each once, Bob's now.
	is.NoErr(stopB())
	is.Equal(rec.sorted(), []removal{{"presence-hall", "ann"}, {"presence-room", "ann"}, {"presence-room", "bob"}})
	is.Equal(rec.lapses.Load(), int64(0))
	keys, err := client.Keys(t.Context(), "*").Result()
	is.NoErr(err)
	is.Equal(keys, []string{}) // nothing left behind
}

// TestRedisLapsedInstanceLearnsIt plays an instance that could not renew
// its heartbeat for longer than Lapse: the others sweep its members, and it
// must hear of it, then join again as a new member.
func TestRedisLapsedInstanceLearnsIt(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	prefix := hostilePrefix()
	a, b := newTestRedis(client, prefix, 0), newTestRedis(client, prefix, 0)
	swept := newRecorder()
	run(t, b, swept.events("b"))

	// b's bob joins first, so that bob stays however long the joins take.
	// a joins, registering itself, but never renews (its Run has not
	// started: as good as stalled).
	join(t, b, "presence-room", "2.1", Member{UserID: "bob"})
	join(t, a, "presence-room", "1.1", Member{UserID: "ann"})
	join(t, a, "presence-room", "1.2", Member{UserID: "bob"})
	old := a.gen.Load()
	swept.waitFor(t, 10*testLapse, "a's members swept by b", func() bool { return len(swept.sorted()) == 1 })
	is.Equal(swept.sorted(), []removal{{"presence-room", "ann"}})
	is.Equal(members(t, b, "presence-room"), []Member{{UserID: "bob"}})

	// a comes back: its first heartbeat finds it was taken for dead.
	own := newRecorder()
	run(t, a, own.events("a"))
	own.waitFor(t, 10*testLapse, "a told of its lapse", func() bool { return own.lapses.Load() == 1 })
	is.True(a.gen.Load() != old)
	// What the transport does on Lapsed: join every open subscription
	// again; the members swept come back, reported as added.
	_, added := join(t, a, "presence-room", "1.1", Member{UserID: "ann"})
	is.True(added)
	_, added = join(t, a, "presence-room", "1.2", Member{UserID: "bob"})
	is.True(!added)
	is.Equal(members(t, b, "presence-room"), []Member{{UserID: "ann"}, {UserID: "bob"}})
	is.Equal(swept.sorted(), []removal{{"presence-room", "ann"}}) // nothing more
}

// TestRedisJoinAfterLapseTakesANewID: a Join is the first to find its
// instance lapsed, before any sweep. It succeeds under a new id; joining
// again the connections recorded under the old id moves them, with no
// member removed or added; Run then tells of the lapse.
func TestRedisJoinAfterLapseTakesANewID(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	prefix := hostilePrefix()
	a := newTestRedis(client, prefix, 0)
	join(t, a, "presence-room", "1.1", Member{UserID: "ann"})
	old := a.gen.Load()
	// Let the deadline pass, as Redis's clock sees it: wait on Redis, not
	// on a sleep.
	deadline, err := client.ZScore(t.Context(), a.instancesKey(), old.id).Result()
	is.NoErr(err)
	waitRedisTime(t, client, int64(deadline)+1)

	_, added := join(t, a, "presence-room", "1.2", Member{UserID: "bob"})
	is.True(added)
	is.True(a.gen.Load() != old)
	_, added = join(t, a, "presence-room", "1.1", Member{UserID: "ann"}) // the transport's re-join
	is.True(!added)
	is.Equal(client.Exists(t.Context(), a.instanceKey(old.id)).Val(), int64(0)) // moved

	rec := newRecorder()
	run(t, a, rec.events("a"))
	rec.waitFor(t, 10*testLapse, "a told of its lapse", func() bool { return rec.lapses.Load() == 1 })
	is.Equal(client.ZScore(t.Context(), a.instancesKey(), old.id).Err(), redis.Nil) // swept, empty
	is.Equal(rec.sorted(), []removal(nil))
	is.Equal(members(t, a, "presence-room"), []Member{{UserID: "ann"}, {UserID: "bob"}})
}

// waitRedisTime waits until Redis's clock reaches ms (Unix milliseconds).
func waitRedisTime(t *testing.T, client *redis.Client, ms int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, err := client.Time(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if now.UnixMilli() >= ms {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis's clock did not reach %d within 10s", ms)
		}
		time.Sleep(time.Duration(ms-now.UnixMilli()) * time.Millisecond)
	}
}

func TestRedisKeyLayout(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	ctx := t.Context()
	s := newTestRedis(client, "app:", 0)
	id := s.gen.Load().id
	join(t, s, "presence-a,b;c", "1.1", Member{UserID: "ann", Info: []byte(`{"n":1}`)})
	join(t, s, "presence-a,b;c", "1.2", Member{UserID: "ann", Info: []byte(`{"n":2}`)})
	join(t, s, "presence-a,b;c", "2.1", Member{UserID: "bob"})

	keys, err := client.Keys(ctx, "*").Result()
	is.NoErr(err)
	slices.Sort(keys)
	is.Equal(keys, []string{
		"app:presence:instance:{" + id + "}:conns",
		"app:presence:instances",
		"app:presence:{presence-a,b;c}:conns",
		"app:presence:{presence-a,b;c}:info",
		"app:presence:{presence-a,b;c}:users",
	})
	is.Equal(client.HGetAll(ctx, "app:presence:{presence-a,b;c}:conns").Val(),
		map[string]string{"1.1": id + " ann", "1.2": id + " ann", "2.1": id + " bob"})
	is.Equal(client.HGetAll(ctx, "app:presence:{presence-a,b;c}:users").Val(), map[string]string{"ann": "2", "bob": "1"})
	is.Equal(client.HGetAll(ctx, "app:presence:{presence-a,b;c}:info").Val(), map[string]string{"ann": `{"n":2}`, "bob": ""})
	is.Equal(client.ZRange(ctx, "app:presence:instance:{"+id+"}:conns", 0, -1).Val(),
		[]string{"14:presence-a,b;c1.1", "14:presence-a,b;c1.2", "14:presence-a,b;c2.1"})
	is.Equal(client.ZScore(ctx, "app:presence:instances", id).Err(), nil)

	// The last connection out takes the channel's keys and the instance's
	// index with it.
	for _, conn := range []string{"1.1", "1.2", "2.1"} {
		leave(t, s, "presence-a,b;c", conn)
	}
	is.Equal(client.Keys(ctx, "*").Val(), []string{"app:presence:instances"})
}

// TestRedisEveryKeyUnderThePrefix runs a bit of everything, a kill and a
// sweep included, on a hostile prefix and with names that try to reach
// each other's keys, then looks at every key in Redis.
func TestRedisEveryKeyUnderThePrefix(t *testing.T) {
	is := is.New(t)
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	prefix := hostilePrefix()
	// b lapses only after a long while: its Run starts after all the
	// joins below, which a loaded machine may make last longer than
	// testLapse, and only a is meant to be taken for dead.
	a := newTestRedis(client, prefix, 0)
	b := NewRedis(client, RedisOptions{Prefix: prefix, Heartbeat: testHeartbeat, Lapse: time.Minute})
	channels := []string{"a", "a}:users", "a}:info}:x", "{a}", "instances", "instance:{x", "}", "a b"}
	for i, c := range channels {
		join(t, a, c, "1.1", Member{UserID: fmt.Sprint("a}:u", i)})
		join(t, b, c, "2.1", Member{UserID: fmt.Sprint("b ", i)})
	}
	for i, c := range channels {
		is.Equal(members(t, a, c), []Member{{UserID: fmt.Sprint("a}:u", i)}, {UserID: fmt.Sprint("b ", i)}})
	}
	keys, err := client.Keys(t.Context(), "*").Result()
	is.NoErr(err)
	is.Equal(len(keys), 3*len(channels)+3) // three per channel, two indexes, the instances
	for _, k := range keys {
		is.True(strings.HasPrefix(k, string(prefix)))
	}

	rec := newRecorder()
	run(t, b, rec.events("b")) // a never renews: b sweeps it
	rec.waitFor(t, 10*testLapse, "a swept", func() bool { return len(rec.sorted()) == len(channels) })
	for i, c := range channels {
		is.Equal(members(t, b, c), []Member{{UserID: fmt.Sprint("b ", i)}})
	}
}

// TestRedisUnavailable checks that every method says Redis is unreachable
// in a way the transport can tell apart, and works again once it is back.
func TestRedisUnavailable(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	opts, err := redisconn.ParseURL(srv.Addr())
	is.NoErr(err)
	client := redisconn.Open(opts)
	t.Cleanup(func() { client.Close() })
	s := newTestRedis(client, "down:", 0)
	join(t, s, "presence-room", "1.1", Member{UserID: "ann"})

	srv.Stop()
	_, _, err = s.Join(t.Context(), "presence-room", "1.2", Member{UserID: "bob"})
	is.True(errors.Is(err, store.ErrUnavailable))
	_, _, err = s.Leave(t.Context(), "presence-room", "1.1")
	is.True(errors.Is(err, store.ErrUnavailable))
	_, err = s.Members(t.Context(), "presence-room")
	is.True(errors.Is(err, store.ErrUnavailable))
	// Run keeps going through the outage, and its stop says what it could
	// not do.
	stop := run(t, s, Events{})
	is.True(errors.Is(stop(), store.ErrUnavailable))

	srv.Restart() // empty: the test server keeps nothing
	_, added := join(t, s, "presence-room", "1.2", Member{UserID: "bob"})
	is.True(added)
}

// TestLuaValidOnOldestRedis reads every script in lua/ and fails on a Redis
// command or literal option newer than the oldest Redis the service runs
// on, branches no test takes included; the tests on ValidOn servers check
// what the scripts really ran.
func TestLuaValidOnOldestRedis(t *testing.T) {
	redistest.CheckLuaFiles(t, redisconn.MinVersion, "lua/*.lua")
}

// TestLuaFilesSayWhatTheyTake checks the header every script starts with.
func TestLuaFilesSayWhatTheyTake(t *testing.T) {
	names, err := fs.Glob(luaFiles, "lua/*.lua")
	if err != nil || len(names) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, name := range names {
		b, _ := fs.ReadFile(luaFiles, name)
		src := string(b)
		base := strings.TrimPrefix(name, "lua/")
		if !strings.HasPrefix(src, "-- "+base+": ") {
			t.Errorf("%s does not start with a comment naming it", name)
		}
		head, _, _ := strings.Cut(src, "\n\n")
		for _, word := range []string{"KEYS:", "ARGV:", "Returns"} {
			if word == "Returns" && base == "prelude.lua" {
				continue
			}
			if !strings.Contains(head, word) {
				t.Errorf("%s's opening comment does not say %s", name, word)
			}
		}
	}
}

// BenchmarkRedisJoinLeave is one presence subscription's cost in Redis: a
// Join answering with a channel of 50 members, then its Leave.
func BenchmarkRedisJoinLeave(b *testing.B) {
	client := redistest.Start(b, redistest.Options{}).Client()
	s := NewRedis(client, RedisOptions{Prefix: "bench:"})
	info := []byte(`{"name":"A user with a name","avatar":"https://example.com/a.png"}`)
	for i := range 49 {
		if _, _, err := s.Join(b.Context(), "presence-room", fmt.Sprintf("1.%d", i), Member{UserID: fmt.Sprint(i), Info: info}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Join(b.Context(), "presence-room", "2.1", Member{UserID: "me", Info: info}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Leave(b.Context(), "presence-room", "2.1"); err != nil {
			b.Fatal(err)
		}
	}
}
