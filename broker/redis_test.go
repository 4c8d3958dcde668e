package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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

// prefixes hands every bus under test its own key namespace in one shared
// redis-server, so the contract's subtests start empty.
var prefixes atomic.Int64

func newPrefix() redisconn.Prefix {
	return redisconn.Prefix(fmt.Sprintf("t%d:", prefixes.Add(1)))
}

// redisInstance is one service instance's bus: its own client and hub on
// the shared Redis, its reader running until the test ends.
type redisInstance struct {
	bus *broker.Redis
	hub *broker.Hub
}

func startRedisBus(t *testing.T, client *redis.Client, prefix redisconn.Prefix, hub *broker.Hub, log broker.ScriptedLog, limits broker.HistoryLimits) *broker.Redis {
	t.Helper()
	return runRedisBus(t, client, hub, log, broker.RedisOptions{Prefix: prefix, History: limits})
}

// runRedisBus starts a bus with any options and waits until it is ready.
func runRedisBus(t *testing.T, client *redis.Client, hub *broker.Hub, log broker.ScriptedLog, opts broker.RedisOptions) *broker.Redis {
	t.Helper()
	bus := broker.NewRedis(client, hub, log, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = bus.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// Ready when Check passes, as /readyz: the reader has read the feed's
	// position and the control channel is subscribed, so a subscribe for a
	// connection held nowhere is answered "unknown", not "unavailable".
	deadline := time.Now().Add(contractWait)
	for {
		err := bus.Check(context.Background())
		if err == nil {
			return bus
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis bus not ready after %s: %v", contractWait, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func clientFor(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	opts, err := redisconn.ParseURL(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := redisconn.Open(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisBus(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	client := clientFor(t, srv)
	// A bus and its inbox share a prefix: newLog makes the inbox first and
	// newBus finds the prefix it was made with.
	var mu sync.Mutex
	prefixOf := map[broker.UserLog]redisconn.Prefix{}
	testBus(t, func(t *testing.T, hub *broker.Hub, log broker.UserLog) broker.Bus {
		var scripted broker.ScriptedLog
		var prefix redisconn.Prefix
		switch l := log.(type) {
		case failingLog:
			prefix = newPrefix()
			scripted = failingScriptedLog{}
		case broker.ScriptedLog:
			mu.Lock()
			prefix = prefixOf[log]
			mu.Unlock()
			scripted = l
		default:
			t.Fatalf("redis bus needs a scripted log, got %T", log)
		}
		return startRedisBus(t, client, prefix, hub, scripted, broker.HistoryLimits{MaxPerChannel: contractMaxPerChannel})
	}, func(t *testing.T, limits inbox.Limits) broker.UserLog {
		prefix := newPrefix()
		log := inbox.NewRedis(client, prefix, limits)
		mu.Lock()
		prefixOf[log] = prefix
		mu.Unlock()
		return log
	})
}

// TestRedisBusPublishStoresWhatAppendStores holds the contract between the
// bus's publish script (lua/publish.lua) and the inbox's Lua chunk
// (ScriptedLog, inbox.Redis.AppendLua): the same notifications, published
// through the bus into one inbox and appended with inbox.Store.Append to
// another with the same limits, read back the same through the inbox's own
// List, Since, Unread and MarkRead.
func TestRedisBusPublishStoresWhatAppendStores(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	client := clientFor(t, srv)
	ctx := t.Context()
	limits := inbox.Limits{MaxPerUser: 4, MaxAge: time.Hour}
	busPrefix := newPrefix()
	viaBus := inbox.NewRedis(client, busPrefix, limits)
	direct := inbox.NewRedis(client, newPrefix(), limits)
	bus := startRedisBus(t, client, busPrefix, broker.NewHub(0), viaBus, broker.HistoryLimits{})

	// Alice gets more than MaxPerUser (so both trim), in one publish and
	// one at a time; data that a re-encoding would change (an empty array,
	// a number past float64, a "timestamp" of its own, non-ASCII text).
	var sent []broker.Notification
	for i := range 7 {
		n := noteOn([]string{"alice", "bob", "alice"}[i%3], "orders")
		n.Title = fmt.Sprintf("Pedido nº %d ✓", i)
		n.Data = json.RawMessage(`{"list":[],"big":12345678901234567890,"timestamp":"1999-01-01T00:00:00Z"}`)
		sent = append(sent, n)
	}
	sent = append(sent, broadcast("orders")) // stored in neither inbox
	published, err := bus.Publish(ctx, sent[:5]...)
	is.NoErr(err)
	for _, n := range sent[5:] {
		out, err := bus.Publish(ctx, n)
		is.NoErr(err)
		published = append(published, out...)
	}
	is.NoErr(direct.Append(ctx, published...))

	readAt := broker.Now()
	for _, user := range []string{"alice", "bob", "carol"} {
		for _, q := range []inbox.Query{{Limit: 10}, {Limit: 2}, {Limit: 10, UnreadOnly: true}} {
			want, err := direct.List(ctx, user, q)
			is.NoErr(err)
			got, err := viaBus.List(ctx, user, q)
			is.NoErr(err)
			is.Equal(got, want) // List, page by page
		}
		for _, n := range published {
			want, wantErr := direct.Since(ctx, user, n.Seq-1)
			got, gotErr := viaBus.Since(ctx, user, n.Seq-1)
			is.Equal(errors.Is(gotErr, inbox.ErrTrimmed), errors.Is(wantErr, inbox.ErrTrimmed)) // the same retention mark
			is.Equal(got, want)                                                                 // Since, from every cursor
		}
		if user != "alice" {
			continue
		}
		last := published[len(published)-2] // alice's newest
		want, wantChanged, err := direct.MarkRead(ctx, user, last.ID, readAt)
		is.NoErr(err)
		got, gotChanged, err := viaBus.MarkRead(ctx, user, last.ID, readAt)
		is.NoErr(err)
		is.Equal(got, want) // an entry the chunk wrote is marked read like Append's
		is.Equal(gotChanged, wantChanged)
		wantUnread, err := direct.Unread(ctx, user)
		is.NoErr(err)
		gotUnread, err := viaBus.Unread(ctx, user)
		is.NoErr(err)
		is.Equal(gotUnread, wantUnread)
	}
}

// TestRedisBusControlFramesFollowTheirNotification pins the feed ids
// lua/notify.lua hands out: a control frame goes after the newest
// notification, <seq>-1, <seq>-2..., as Redis 7's XADD "<seq>-*" would,
// and reaches the user in that order.
func TestRedisBusControlFramesFollowTheirNotification(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	client := clientFor(t, srv)
	prefix := newPrefix()
	hub := broker.NewHub(0)
	bus := startRedisBus(t, client, prefix, hub, inbox.NewRedis(client, prefix, inbox.Limits{}), broker.HistoryLimits{})
	ctx := t.Context()
	conn := newRecorder(nil)
	is.NoErr(hub.Register("c", "alice", nil, conn))

	control := func(name string) { is.NoErr(bus.NotifyUser(ctx, "alice", broker.EventFrame(name, nil))) }
	control("a") // nothing published yet: 0-1
	control("b")
	_, err := bus.Publish(ctx, note("alice"))
	is.NoErr(err)
	control("c")
	control("d")
	_, err = bus.Publish(ctx, note("alice"))
	is.NoErr(err)

	entries, err := client.XRange(ctx, prefix.Key("bus", "feed"), "-", "+").Result()
	is.NoErr(err)
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	is.Equal(ids, []string{"0-1", "0-2", "1-0", "1-1", "1-2", "2-0"})
	var got []string
	for _, f := range conn.wait(t, 6) {
		got = append(got, decode(t, f)["event"].(string))
	}
	is.Equal(got, []string{"a", "b", "notification", "c", "d", "notification"})
}

// failingScriptedLog is an inbox whose every write fails, inside the
// publish script as outside it.
type failingScriptedLog struct{ failingLog }

func (failingScriptedLog) AppendLua() string {
	return `local function inbox_append() error({err = 'ERR store down'}) end`
}

// cluster is several instances on one Redis and one prefix.
func cluster(t *testing.T, srv *redistest.Server, n int) []redisInstance {
	t.Helper()
	prefix := newPrefix()
	out := make([]redisInstance, n)
	for i := range out {
		client := clientFor(t, srv)
		hub := broker.NewHub(0)
		log := inbox.NewRedis(client, prefix, inbox.Limits{})
		out[i] = redisInstance{bus: startRedisBus(t, client, prefix, hub, log, broker.HistoryLimits{MaxPerChannel: 100}), hub: hub}
	}
	return out
}

func TestRedisBusAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})

	t.Run("a publish on any instance reaches matching connections on every instance, once, in order", func(t *testing.T) {
		is := is.New(t)
		nodes := cluster(t, srv, 3)
		ctx := t.Context()
		var recs []*recorder
		for i, node := range nodes {
			news := newRecorder(nil)
			alice := newRecorder(nil)
			is.NoErr(node.hub.Register(fmt.Sprintf("news-%d", i), fmt.Sprintf("reader-%d", i), []string{"news"}, news))
			is.NoErr(node.hub.Register(fmt.Sprintf("alice-%d", i), "alice", nil, alice))
			recs = append(recs, news, alice)
		}
		var want []uint64
		for i := range 30 {
			n := broadcast("news")
			if i%2 == 1 {
				n = note("alice")
			}
			out, err := nodes[i%3].bus.Publish(ctx, n)
			is.NoErr(err)
			want = append(want, out[0].Seq)
		}
		var news, alices []uint64
		for j, seq := range want {
			if j%2 == 1 {
				alices = append(alices, seq)
			} else {
				news = append(news, seq)
			}
		}
		for i := range nodes {
			is.Equal(frameSeqs(recs[2*i].wait(t, 15)), news) // every news subscriber, in order
			is.Equal(frameSeqs(recs[2*i+1].wait(t, 15)), alices)
		}
		// Nothing more arrives: once each.
		last, err := nodes[0].bus.Publish(ctx, broadcast("news"))
		is.NoErr(err)
		for i := range nodes {
			got := recs[2*i].wait(t, 16)
			is.Equal(len(got), 16)
			is.Equal(got[15].Seq, last[0].Seq)
			is.Equal(len(recs[2*i+1].got()), 15)
		}
	})

	t.Run("control frames reach the user's connections on every instance", func(t *testing.T) {
		is := is.New(t)
		nodes := cluster(t, srv, 2)
		a, b := newRecorder(nil), newRecorder(nil)
		is.NoErr(nodes[0].hub.Register("a", "alice", nil, a))
		is.NoErr(nodes[1].hub.Register("b", "alice", nil, b))
		is.NoErr(nodes[1].bus.NotifyUser(t.Context(), "alice", broker.EventFrame("read", map[string]any{"id": "n1"})))
		for _, r := range []*recorder{a, b} {
			f := r.wait(t, 1)[0]
			is.Equal(f.Event, "read")
			is.Equal(decode(t, f)["id"], "n1")
		}
	})

	t.Run("a server-side subscribe reaches the instance that holds the connection", func(t *testing.T) {
		is := is.New(t)
		nodes := cluster(t, srv, 3)
		ctx := t.Context()
		conn := newRecorder(nil)
		is.NoErr(nodes[2].hub.Register("c-far", "alice", nil, conn))

		sub, err := nodes[0].bus.Subscribe(ctx, broker.ChannelChange{ConnID: "c-far", Channels: []string{"news"}})
		is.NoErr(err)
		is.Equal(sub, broker.Subscription{ConnectionID: "c-far", UserID: "alice", Channels: []string{"news"}})
		out, err := nodes[1].bus.Publish(ctx, broadcast("news"))
		is.NoErr(err)
		is.Equal(frameSeqs(conn.wait(t, 1)), []uint64{out[0].Seq})

		sub, err = nodes[1].bus.Unsubscribe(ctx, broker.ChannelChange{ConnID: "c-far", Channels: []string{"news"}})
		is.NoErr(err)
		is.Equal(sub.Channels, []string{})

		_, err = nodes[0].bus.Subscribe(ctx, broker.ChannelChange{ConnID: "nobody", Channels: []string{"news"}})
		is.True(errors.Is(err, broker.ErrUnknownConnection))
	})

	t.Run("a too-many-channels refusal travels back from the owner", func(t *testing.T) {
		is := is.New(t)
		prefix := newPrefix()
		var nodes []redisInstance
		for _, max := range []int{0, 1} {
			client := clientFor(t, srv)
			hub := broker.NewHub(max)
			nodes = append(nodes, redisInstance{hub: hub, bus: startRedisBus(t, client, prefix, hub, inbox.NewRedis(client, prefix, inbox.Limits{}), broker.HistoryLimits{})})
		}
		is.NoErr(nodes[1].hub.Register("c", "alice", []string{"a"}, newRecorder(nil)))
		_, err := nodes[0].bus.Subscribe(t.Context(), broker.ChannelChange{ConnID: "c", Channels: []string{"b"}})
		is.True(errors.Is(err, broker.ErrTooManyChannels))
	})

	t.Run("a client resumes on another instance with exactly what it missed, in order", func(t *testing.T) {
		is := is.New(t)
		nodes := cluster(t, srv, 2)
		ctx := t.Context()
		first := newRecorder(nil)
		is.NoErr(nodes[0].hub.Register("on-a", "alice", []string{"news"}, first))
		seen, err := nodes[0].bus.Publish(ctx, note("alice"), broadcast("news"))
		is.NoErr(err)
		last := first.wait(t, 2)[1]
		nodes[0].hub.Unregister("on-a") // dropped

		var missed []uint64
		for i := range 6 {
			n := []broker.Notification{note("alice"), broadcast("news"), broadcast("sports"), note("bob")}[i%4]
			out, err := nodes[i%2].bus.Publish(ctx, n)
			is.NoErr(err)
			if n.UserID == "alice" || (n.UserID == "" && n.Channels[0] == "news") {
				missed = append(missed, out[0].Seq)
			}
		}
		cursor, err := broker.ParseCursor(last.Cursor)
		is.NoErr(err)
		is.Equal(cursor.Seq, seen[1].Seq)
		// Instance B must have read at least as far as the publishes for
		// its head to cover them: wait for it through a live connection on
		// a channel nothing above published to (a "sports" probe could also
		// receive the earlier sports broadcast if B had not read it yet).
		probe := newRecorder(nil)
		is.NoErr(nodes[1].hub.Register("probe", "probe", []string{"probe"}, probe))
		out, err := nodes[0].bus.Publish(ctx, broadcast("probe"))
		is.NoErr(err)
		is.Equal(frameSeqs(probe.wait(t, 1)), []uint64{out[0].Seq})

		frames, err := replay(t, nodes[1].hub, nodes[1].bus, "alice", []string{"news"}, cursor)
		is.NoErr(err)
		is.Equal(frameSeqs(frames), missed)
	})
}

// resyncRecorder is a connection that counts the bus's requests to resume.
type resyncRecorder struct {
	*recorder
	resyncs atomic.Int32
	asked   chan struct{}
}

func (r *resyncRecorder) Resync() {
	if r.resyncs.Add(1) == 1 {
		close(r.asked)
	}
}

func TestRedisBusRecoversFromOutage(t *testing.T) {
	t.Run("after Redis restarts with its data, delivery goes on where it stopped", func(t *testing.T) {
		is := is.New(t)
		srv := redistest.Start(t, redistest.Options{Persistent: true, ValidOn: redisconn.MinVersion})
		nodes := cluster(t, srv, 2)
		ctx := t.Context()
		conn := &resyncRecorder{recorder: newRecorder(nil), asked: make(chan struct{})}
		is.NoErr(nodes[1].hub.Register("c", "alice", []string{"news"}, conn))
		_, err := nodes[0].bus.Publish(ctx, broadcast("news"))
		is.NoErr(err)
		conn.wait(t, 1)

		srv.Stop()
		_, err = nodes[0].bus.Publish(ctx, broadcast("news"))
		is.True(errors.Is(err, store.ErrUnavailable)) // refused, not dropped
		is.True(nodes[1].bus.Check(ctx) != nil)       // degraded
		srv.Restart()

		streamtest.Eventually(t, "the bus to be healthy again", func() bool { return nodes[1].bus.Check(ctx) == nil })
		_, err = nodes[0].bus.Publish(ctx, broadcast("news"))
		is.NoErr(err)
		is.Equal(len(conn.wait(t, 2)), 2)
		is.Equal(conn.resyncs.Load(), int32(0)) // nothing was lost, nobody had to resume
	})

	t.Run("after Redis loses its data, local connections are asked to resume", func(t *testing.T) {
		is := is.New(t)
		srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
		nodes := cluster(t, srv, 1)
		ctx := t.Context()
		conn := &resyncRecorder{recorder: newRecorder(nil), asked: make(chan struct{})}
		is.NoErr(nodes[0].hub.Register("c", "alice", []string{"news"}, conn))
		before, err := nodes[0].bus.Head(ctx)
		is.NoErr(err)
		_, err = nodes[0].bus.Publish(ctx, broadcast("news"))
		is.NoErr(err)
		conn.wait(t, 1)

		srv.Stop()
		srv.Restart() // no persistence: everything is gone
		select {
		case <-conn.asked:
		case <-time.After(contractWait):
			t.Fatal("connection was not asked to resume")
		}
		after, err := nodes[0].bus.Head(ctx)
		is.NoErr(err)
		is.True(after.Epoch != before.Epoch) // old cursors now answer reset
	})
}

// TestRedisBusReportsTypeAndTimestamp: the delivery callback of a Redis
// bus gets the type and timestamp of what it delivered, as the memory
// bus's does, on every instance (the analytics count deliveries by them).
func TestRedisBusReportsTypeAndTimestamp(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	client := clientFor(t, srv)
	prefix := newPrefix()
	got := make(chan broker.Notification, 4)
	bus := runRedisBus(t, client, broker.NewHub(0), inbox.NewRedis(client, prefix, inbox.Limits{}), broker.RedisOptions{
		Prefix: prefix, Delivered: func(n broker.Notification, reached int) { got <- n },
	})
	sent := note("alice")
	sent.Type, sent.Timestamp = `App\Notifications\Tarea`, broker.Now()
	out, err := bus.Publish(t.Context(), sent)
	is.NoErr(err)
	select {
	case n := <-got:
		is.Equal(n.Seq, out[0].Seq)
		is.Equal(n.Type, sent.Type)
		is.True(n.Timestamp.Equal(sent.Timestamp))
	case <-time.After(contractWait):
		t.Fatal("no delivery reported")
	}
}
