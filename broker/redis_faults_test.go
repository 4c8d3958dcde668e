package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/inbox"
	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
	"notification-service/store"
)

// Faults of Redis mode, each against a real redis-server: a reader that
// falls behind the feed's cap, Redis rolling back under the same epoch, a
// publish whose answer is lost, history meta outliving its entries, very
// large sequence numbers, and Redis out of memory.

// startFaultBus starts a bus with its own Redis inbox and any options.
func startFaultBus(t *testing.T, client *redis.Client, hub *broker.Hub, opts broker.RedisOptions) *broker.Redis {
	t.Helper()
	return runRedisBus(t, client, hub, inbox.NewRedis(client, opts.Prefix, inbox.Limits{}), opts)
}

// A feed reader that falls more than the feed's cap (feedMaxLen, about
// 20,000 entries) behind, without any Redis error (a stalled process, a slow audit
// hook, CPU starvation under load), resumes its XREAD from an id that has
// been trimmed away. XREAD silently answers what is still there, and
// deliver() accepts any seq > head: the notifications in between are never
// delivered to this instance's connections, and nobody is asked to resume.
func TestRedisBusFaultFeedReaderLaggingPastCapLosesSilently(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 100k notifications")
	}
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	client := clientFor(t, srv)
	prefix := newPrefix()

	// The lagging instance: its audit hook (Delivered, called on the reader
	// goroutine) stalls on the first notification until released.
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	stalled := make(chan struct{})
	var stallOnce sync.Once
	hub := broker.NewHub(0)
	bus := startFaultBus(t, client, hub, broker.RedisOptions{
		Prefix:  prefix,
		History: broker.HistoryLimits{MaxPerChannel: 10},
		Delivered: func(n broker.Notification, _ int) {
			stallOnce.Do(func() {
				close(stalled)
				<-release
			})
		},
	})
	t.Cleanup(unblock) // runs before the bus's cleanup (LIFO)

	conn := &resyncRecorder{recorder: newRecorder(nil), asked: make(chan struct{})}
	is.NoErr(hub.Register("c", "alice", []string{"news"}, conn))

	ctx := t.Context()
	first, err := bus.Publish(ctx, broadcast("news"))
	is.NoErr(err)
	select {
	case <-stalled:
	case <-time.After(contractWait):
		t.Fatal("reader did not deliver the first notification")
	}
	second, err := bus.Publish(ctx, broadcast("news")) // will be trimmed from the feed
	is.NoErr(err)
	// Push more than the feed holds (feedMaxLen, MAXLEN ~).
	batch := make([]broker.Notification, 1000)
	for range 102 {
		for i := range batch {
			batch[i] = broadcast("bulk")
		}
		_, err := bus.Publish(ctx, batch...)
		is.NoErr(err)
	}
	last, err := bus.Publish(ctx, broadcast("news"))
	is.NoErr(err)
	unblock()

	// Wait until the reader has caught up with the last publish, or has
	// asked the connection to resume.
	deadline := time.After(30 * time.Second)
wait:
	for {
		got := conn.got()
		if len(got) > 0 && got[len(got)-1].Seq == last[0].Seq {
			break
		}
		select {
		case <-conn.asked:
			break wait
		case <-conn.more:
		case <-deadline:
			t.Fatalf("reader never caught up: got %v", frameSeqs(conn.got()))
		}
	}
	if conn.resyncs.Load() > 0 {
		return // the gap was noticed: the client resumes from its cursor
	}
	is.Equal(frameSeqs(conn.got()), []uint64{first[0].Seq, second[0].Seq, last[0].Seq}) // seq 2 silently skipped
}

// A Redis that comes back with older data but the same epoch (RDB
// persistence, Redis's default: a crash loses what came after the last
// snapshot; or an AOF with appendfsync everysec, or a failover to a lagging
// replica) hands out the lost sequence numbers again, to other
// notifications. The reader notices seq < head and ends its connections,
// but the epoch stays, so a client's cursor from before the crash is still
// accepted: once the sequence has passed it again, Replay answers only what
// follows it, and the notifications that reused the sequence numbers up to
// the cursor are silently never replayed.
func TestRedisBusFaultRollbackWithSameEpochReusesCursors(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	nodes := cluster(t, srv, 1)
	node := nodes[0]
	ctx := t.Context()
	admin := srv.Client()

	conn := &resyncRecorder{recorder: newRecorder(nil), asked: make(chan struct{})}
	is.NoErr(node.hub.Register("c", "alice", []string{"news"}, conn))
	_, err := node.bus.Publish(ctx, broadcast("news"))
	is.NoErr(err)
	is.NoErr(admin.Save(ctx).Err()) // the last snapshot: seq 1
	for range 3 {
		_, err := node.bus.Publish(ctx, broadcast("news"))
		is.NoErr(err)
	}
	frames := conn.wait(t, 4)
	cursor, err := broker.ParseCursor(frames[3].Cursor) // what the client holds
	is.NoErr(err)

	srv.Stop() // crash: seqs 2..4 were never snapshotted
	srv.Restart()
	select {
	case <-conn.asked: // the instance noticed and ended the stream
	case <-time.After(contractWait):
		t.Fatal("connection was not asked to resume")
	}
	// New notifications take seqs 2, 3, 4 again, then 5.
	var fresh []uint64
	for range 4 {
		out, err := node.bus.Publish(ctx, broadcast("news"))
		is.NoErr(err)
		fresh = append(fresh, out[0].Seq)
	}
	streamtest.Eventually(t, "the head to reach the last fresh seq", func() bool {
		h, err := node.bus.Head(ctx)
		return err == nil && h.Seq >= fresh[3]
	})

	// The client reconnects with its cursor from before the crash.
	got, err := replay(t, node.hub, node.bus, "alice", []string{"news"}, cursor)
	if errors.Is(err, broker.ErrCursorExpired) {
		return // reset: the client refetches, nothing silently lost
	}
	is.NoErr(err)
	t.Logf("cursor %s, fresh seqs %v, replayed %v", cursor, fresh, frameSeqs(got))
	is.Equal(frameSeqs(got), fresh) // everything published after the crash
}

// A channel's history expires MaxAge after its last broadcast, so a channel
// nobody broadcasts on any more leaves nothing behind. Its meta key
// (trimmed, last) must not expire with it: after the history is gone,
// Replay reads in the meta what it held and answers ErrCursorExpired to a
// cursor from before it, rather than "nothing missed", a silent gap
// (docs/ARCHITECTURE.md#streams-admission-catch-up-resume: a cursor older
// than what is retained is never silently ignored). The memory bus keeps a global "forgotten" mark for the same
// reason, and the inbox's own meta has no TTL either.
func TestRedisBusFaultHistoryMetaExpiryHidesGap(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	client := clientFor(t, srv)
	hub := broker.NewHub(0)
	const maxAge = time.Second // long enough for the first replay on a loaded machine
	prefix := newPrefix()
	bus := startFaultBus(t, client, hub, broker.RedisOptions{Prefix: prefix, History: broker.HistoryLimits{MaxAge: maxAge}})
	ctx := t.Context()

	_, err := bus.Publish(ctx, broadcast("news"))
	is.NoErr(err)
	cursor, err := bus.Head(ctx)
	is.NoErr(err)
	missed, err := bus.Publish(ctx, broadcast("news")) // the client is away
	is.NoErr(err)
	got, err := replay(t, hub, bus, "alice", []string{"news"}, cursor)
	is.NoErr(err)
	is.Equal(frameSeqs(got), []uint64{missed[0].Seq}) // while the history holds it

	// Redis drops the history MaxAge after the last broadcast. Asking
	// EXISTS is also what makes Redis expire the key as soon as it is due.
	history := prefix.Key("history", "{news}")
	streamtest.Eventually(t, "the history to expire", func() bool {
		n, err := client.Exists(ctx, history).Result()
		return err == nil && n == 0
	})
	got, err = replay(t, hub, bus, "alice", []string{"news"}, cursor)
	t.Logf("missed seq %d; replay answered %v, %v", missed[0].Seq, frameSeqs(got), err)
	is.True(errors.Is(err, broker.ErrCursorExpired)) // silent gap otherwise

	// And it stays so: the meta never expires.
	ttl, err := client.PTTL(ctx, history+":meta").Result()
	is.NoErr(err)
	is.Equal(ttl, time.Duration(-1)) // PTTL -1: a key without a TTL
}

// Publish answers an error (503) although the script ran: the notification
// is stored and delivered. Bus.Publish's contract says "On error nothing was
// stored or delivered" but for this case, and the HTTP layer relies on it:
// on error it Aborts the Idempotency-Key ("Nothing was created: release the
// key so a retry runs again"), so the backend's retry with the same key
// sends it a second time unless the bus recognises the retry. Here the
// reply is lost because the caller's deadline passes while the publish
// script still runs (slowLog holds Redis inside it: a slow moment, as a
// fork, a big script or a network stall makes one); a read timeout (3 s) or
// a reset does the same.
func TestRedisBusFaultPublishErrorAfterStoring(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	client := clientFor(t, srv)
	hub := broker.NewHub(0)
	prefix := newPrefix()
	n := note("alice")
	// Twice the caller's deadline below, which is long enough for the
	// command to be written before it passes on a loaded machine.
	const hold = time.Second
	log := slowLog{Redis: inbox.NewRedis(client, prefix, inbox.Limits{}), id: n.ID, hold: hold}
	bus := runRedisBus(t, client, hub, log, broker.RedisOptions{Prefix: prefix, History: broker.HistoryLimits{MaxPerChannel: 10}})
	conn := newRecorder(nil)
	is.NoErr(hub.Register("c", "alice", nil, conn))

	// The publish script is loaded (EVALSHA finds it).
	_, err := bus.Publish(t.Context(), note("bob"))
	is.NoErr(err)

	// The script holds Redis for longer than the caller waits, whatever
	// the machine's speed: its deadline always passes first.
	ctx, cancel := context.WithTimeout(t.Context(), hold/2)
	defer cancel()
	_, err = bus.Publish(ctx, n)
	is.True(err != nil)                           // the caller is told it failed (503)...
	is.True(errors.Is(err, store.ErrUnavailable)) // ...as "store unavailable"
	// ...yet the script ran to its end: stored and delivered.
	is.Equal(conn.wait(t, 1)[0].Seq, uint64(2))

	// The caller retries with the same notification, and the bus
	// publishes it once in all.
	again, err := bus.Publish(t.Context(), n)
	is.NoErr(err)
	is.Equal(again[0].Seq, uint64(2)) // the first run's sequence number
	box, err := inbox.NewRedis(client, prefix, inbox.Limits{}).List(t.Context(), "alice", inbox.Query{Limit: 10})
	is.NoErr(err)
	is.Equal(box.Total, 1)
	_, err = bus.Publish(t.Context(), note("alice")) // a different notification goes through...
	is.NoErr(err)
	is.Equal(len(conn.wait(t, 2)), 2) // ...and arrives second: the retry delivered nothing
}

// slowLog is a Redis inbox whose chunk, run by the bus's publish script,
// holds Redis for hold after storing the notification id: a publish whose
// script is still running when its caller gives up.
type slowLog struct {
	*inbox.Redis
	id   string
	hold time.Duration
}

func (l slowLog) AppendLua() string {
	return l.Redis.AppendLua() + fmt.Sprintf(`
local inbox_append_quick = inbox_append
local function inbox_append(user_id, id, seq, notification_json, now_ms)
  inbox_append_quick(user_id, id, seq, notification_json, now_ms)
  if id ~= %q then return end
  local function inbox_now_us()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local inbox_until = inbox_now_us() + %d
  -- Asks the time every 10,000 turns, not every turn: each TIME is a
  -- command the test's MONITOR records and checks afterwards.
  while inbox_now_us() < inbox_until do for _ = 1, 10000 do end end
end
`, l.id, l.hold.Microseconds())
}

// Lua 5.1 turns a number into a string with "%.14g" when it is concatenated,
// so from seq 10^14 on the publish script builds the feed id "1e+14-0" and the
// cursor "<epoch>-1e+14": XADD fails after the inbox write (a partial write,
// and every later publish fails the same way). The inbox chunk formats with
// inbox_num for this reason; the publish script does not. Far off (10^14
// sends), but the design promises seqs up to 2^53.
func TestRedisBusFaultPublishLargeSeq(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	client := clientFor(t, srv)
	hub := broker.NewHub(0)
	prefix := newPrefix()
	ctx := t.Context()
	// Where the sequence would stand after 10^14 - 1 publishes (set before
	// the bus starts: behind its back it would be a gap in the feed).
	is.NoErr(client.Set(ctx, prefix.Key("bus", "seq"), "99999999999999", 0).Err())
	bus := startFaultBus(t, client, hub, broker.RedisOptions{Prefix: prefix})
	conn := newRecorder(nil)
	is.NoErr(hub.Register("c", "alice", nil, conn))

	out, err := bus.Publish(ctx, note("alice"))
	is.NoErr(err)
	is.Equal(out[0].Seq, uint64(100000000000000))
	f := conn.wait(t, 1)[0]
	is.True(strings.HasSuffix(f.Cursor, "-100000000000000"))
}

// A Redis at maxmemory (noeviction) refuses writes with "OOM command not
// allowed...": nothing is stored, and a retry later may succeed, yet
// redisconn.Unavailable does not list OOM, so a send answers 500 instead of
// 503.
func TestRedisBusFaultOOMIsUnavailable(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{Args: []string{"--maxmemory-policy", "noeviction"}, ValidOn: redisconn.MinVersion})
	client := clientFor(t, srv)
	hub := broker.NewHub(0)
	bus := startFaultBus(t, client, hub, broker.RedisOptions{Prefix: newPrefix()})
	ctx := t.Context()
	is.NoErr(srv.Client().ConfigSet(ctx, "maxmemory", "1").Err())
	t.Cleanup(func() { srv.Client().ConfigSet(context.Background(), "maxmemory", "0") })

	_, err := bus.Publish(ctx, note("alice"))
	t.Logf("publish at maxmemory: %v", err)
	is.True(err != nil)
	is.True(errors.Is(err, store.ErrUnavailable)) // 503, not 500
}
