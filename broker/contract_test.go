package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/inbox"
)

// contractMaxPerChannel is the HistoryLimits.MaxPerChannel every bus under
// testBus is built with, so the contract can prove that a cursor older than
// the retained history is refused rather than answered with a gap.
const contractMaxPerChannel = 20

// contractWait bounds every wait for a delivery: a bus may deliver
// asynchronously (Redis pub/sub), so the contract waits for events rather
// than assuming Publish delivered before it returned.
const contractWait = 5 * time.Second

// testBus checks the behaviour every Bus shares (the Bus interface's
// documentation). newBus returns a bus delivering to hub's connections and
// storing user-addressed notifications in log, with HistoryLimits
// {MaxPerChannel: contractMaxPerChannel} and no age limit, in a fresh
// namespace (nothing published before).
//
// newLog returns the inbox the bus under test stores user-addressed
// notifications in (a Redis bus needs one in its own Redis). A newBus given
// failingLog{} must build a bus whose inbox refuses every write.
func testBus(t *testing.T, newBus func(t *testing.T, hub *broker.Hub, log broker.UserLog) broker.Bus, newLog func(t *testing.T, limits inbox.Limits) broker.UserLog) {
	t.Helper()

	t.Run("publish assigns increasing sequence numbers", func(t *testing.T) {
		is := is.New(t)
		bus := newBus(t, broker.NewHub(0), newLog(t, inbox.Limits{}))
		ctx := t.Context()

		first, err := bus.Publish(ctx, note("alice"), note("bob"), broadcast("news"))
		is.NoErr(err)
		is.Equal(len(first), 3)
		second, err := bus.Publish(ctx, note("alice"))
		is.NoErr(err)
		is.Equal(len(second), 1)

		all := append(first, second...)
		var last uint64
		for _, n := range all {
			is.True(n.Seq > last) // strictly increasing, across and within calls
			last = n.Seq
		}
		is.Equal(first[0].UserID, "alice") // returned in the order given, fields kept
		is.Equal(first[2].Channels, []string{"news"})

		head, err := bus.Head(ctx)
		is.NoErr(err)
		is.Equal(head.Seq, last)
		is.True(head.Epoch != "")
	})

	t.Run("user-addressed notifications are stored before they are delivered", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		log := newLog(t, inbox.Limits{})
		bus := newBus(t, hub, log)
		ctx := t.Context()

		// The connection looks the notification up in the inbox the moment
		// it is delivered: persist first means it is already there.
		var mu sync.Mutex
		var problems []string
		alice := newRecorder(func(f *broker.Frame) {
			got, err := log.Since(context.Background(), "alice", f.Seq-1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || len(got) == 0 || got[0].Seq != f.Seq {
				problems = append(problems, fmt.Sprintf("seq %d delivered before it was stored (inbox: %v, %v)", f.Seq, seqsOf(got), err))
			}
		})
		is.NoErr(hub.Register("c-alice", "alice", nil, alice))

		published, err := bus.Publish(ctx, note("alice"), note("bob"), note("alice"))
		is.NoErr(err)
		_, err = bus.Publish(ctx, broadcast("news"))
		is.NoErr(err)
		alice.wait(t, 2)
		mu.Lock()
		is.Equal(problems, nil)
		mu.Unlock()

		stored, err := log.Since(ctx, "alice", 0)
		is.NoErr(err)
		is.Equal(seqsOf(stored), []uint64{published[0].Seq, published[2].Seq})
		is.Equal(stored[0].ID, published[0].ID)
		stored, err = log.Since(ctx, "bob", 0)
		is.NoErr(err)
		is.Equal(seqsOf(stored), []uint64{published[1].Seq}) // stored although bob is offline
	})

	t.Run("a failing store stores and delivers nothing", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, failingLog{})
		ctx := t.Context()
		before, err := bus.Head(ctx)
		is.NoErr(err)
		alice := newRecorder(nil)
		is.NoErr(hub.Register("c-alice", "alice", []string{"news"}, alice))

		_, err = bus.Publish(ctx, note("alice"), broadcast("news"))
		is.True(err != nil) // the memory bus returns the store's own error; Redis, the script's

		after, err := bus.Head(ctx)
		is.NoErr(err)
		is.Equal(after, before)
		frames, err := replay(t, hub, bus, "alice", []string{"news"}, before)
		is.NoErr(err)
		is.Equal(len(frames), 0)
		is.Equal(len(alice.got()), 0)
	})

	t.Run("live frames carry the notification and its cursor", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, newLog(t, inbox.Limits{}))
		alice := newRecorder(nil)
		is.NoErr(hub.Register("c-alice", "alice", []string{"news"}, alice))

		n := note("alice")
		n.Title = "Hello"
		n.Channels = []string{"news"}
		n.Data = json.RawMessage(`{"order":42}`)
		published, err := bus.Publish(t.Context(), n)
		is.NoErr(err)
		head, err := bus.Head(t.Context())
		is.NoErr(err)

		f := alice.wait(t, 1)[0]
		is.Equal(f.Event, "") // SSE's default event type
		is.Equal(f.Seq, published[0].Seq)
		is.Equal(f.Cursor, broker.Cursor{Epoch: head.Epoch, Seq: published[0].Seq}.String())
		m := decode(t, f)
		is.Equal(m["event"], "notification")
		is.Equal(m["cursor"], f.Cursor)
		is.Equal(m["id"], n.ID)
		is.Equal(m["user_id"], "alice")
		is.Equal(m["title"], "Hello")
		is.Equal(m["data"], map[string]any{"order": float64(42)})
	})

	t.Run("replay returns exactly what was missed, in order", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, newLog(t, inbox.Limits{}))
		ctx := t.Context()
		subscribed := []string{"news", "tech"}

		// Seen before the cursor: nothing of it comes back.
		seen, err := bus.Publish(ctx, note("alice"), broadcast("news"))
		is.NoErr(err)
		cursor, err := bus.Head(ctx)
		is.NoErr(err)
		is.Equal(cursor.Seq, seen[1].Seq)

		type pub struct {
			n    broker.Notification
			want bool
		}
		plan := []pub{
			{note("alice"), true},
			{note("bob"), false},
			{broadcast("news"), true},
			{broadcast("sports"), false},
			{noteOn("alice", "news"), true},
			{noteOn("alice", "sports"), false},
			{broadcast("news", "tech"), true}, // in two subscribed histories, replayed once
			{broadcast("sports", "tech"), true},
			{broadcast("sports", "music"), false},
			{noteOn("bob", "news"), false},
			{note("alice"), true},
		}
		// Some published together, some alone: order across calls counts.
		var want []uint64
		var wantIDs []string
		for i := 0; i < len(plan); {
			batch := []broker.Notification{plan[i].n}
			if i+1 < len(plan) && i%3 == 0 {
				batch = append(batch, plan[i+1].n)
			}
			out, err := bus.Publish(ctx, batch...)
			is.NoErr(err)
			for j, n := range out {
				if plan[i+j].want {
					want = append(want, n.Seq)
					wantIDs = append(wantIDs, n.ID)
				}
			}
			i += len(batch)
		}

		frames, err := replay(t, hub, bus, "alice", subscribed, cursor)
		is.NoErr(err)
		is.Equal(frameSeqs(frames), want)
		for i, f := range frames {
			m := decode(t, f)
			is.Equal(f.Event, "")
			is.Equal(m["event"], "notification")
			is.Equal(m["cursor"], f.Cursor)
			is.Equal(m["id"], wantIDs[i])
			c, err := broker.ParseCursor(f.Cursor)
			is.NoErr(err)
			is.Equal(c, broker.Cursor{Epoch: cursor.Epoch, Seq: f.Seq})
		}

		// From the head nothing is missed; from the middle, the rest.
		head, err := bus.Head(ctx)
		is.NoErr(err)
		frames, err = replay(t, hub, bus, "alice", subscribed, head)
		is.NoErr(err)
		is.Equal(len(frames), 0)
		frames, err = replay(t, hub, bus, "alice", subscribed, broker.Cursor{Epoch: cursor.Epoch, Seq: want[2]})
		is.NoErr(err)
		is.Equal(frameSeqs(frames), want[3:])

		// A connection on no channel replays only its own unchannelled
		// notifications; another user sees only broadcasts.
		frames, err = replay(t, hub, bus, "alice", nil, cursor)
		is.NoErr(err)
		is.Equal(frameSeqs(frames), []uint64{want[0], want[len(want)-1]})
		frames, err = replay(t, hub, bus, "carol", []string{"news"}, cursor)
		is.NoErr(err)
		is.Equal(len(frames), 2) // the broadcast on news and the one on news+tech
	})

	t.Run("replayed frames equal live frames", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, newLog(t, inbox.Limits{}))
		ctx := t.Context()
		cursor, err := bus.Head(ctx)
		is.NoErr(err)
		live := newRecorder(nil)
		is.NoErr(hub.Register("c-alice", "alice", []string{"news"}, live))
		n := noteOn("alice", "news")
		n.Data = json.RawMessage(`{"k":"v"}`)
		_, err = bus.Publish(ctx, n, broadcast("news"))
		is.NoErr(err)

		got := live.wait(t, 2)
		replayed, err := replay(t, hub, bus, "alice", []string{"news"}, cursor)
		is.NoErr(err)
		is.Equal(len(replayed), 2)
		for i := range got {
			is.Equal(replayed[i].Cursor, got[i].Cursor)
			is.Equal(replayed[i].Seq, got[i].Seq)
			is.Equal(replayed[i].Event, got[i].Event)
			is.Equal(decode(t, replayed[i]), decode(t, got[i]))
		}
	})

	t.Run("replay refuses a cursor it cannot honour whole", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, newLog(t, inbox.Limits{}))
		ctx := t.Context()
		start, err := bus.Head(ctx)
		is.NoErr(err)
		_, err = bus.Publish(ctx, note("alice"), broadcast("news"))
		is.NoErr(err)
		head, err := bus.Head(ctx)
		is.NoErr(err)

		for name, c := range map[string]broker.Cursor{
			"another epoch":  {Epoch: head.Epoch + "x", Seq: 1},
			"no epoch":       {Seq: 1},
			"beyond head":    {Epoch: head.Epoch, Seq: head.Seq + 1},
			"far beyond":     {Epoch: head.Epoch, Seq: head.Seq + 1000},
			"other, at zero": {Epoch: "zz" + head.Epoch, Seq: 0},
		} {
			_, err := replay(t, hub, bus, "alice", []string{"news"}, c)
			if !errors.Is(err, broker.ErrCursorExpired) {
				t.Errorf("%s (%s): got %v, want ErrCursorExpired", name, c, err)
			}
		}

		// Trimmed channel history: a cursor before what is retained
		// expires; one inside the retained window still replays.
		var busy []broker.Notification
		for range contractMaxPerChannel + 5 {
			out, err := bus.Publish(ctx, broadcast("busy"))
			is.NoErr(err)
			busy = append(busy, out...)
		}
		_, err = replay(t, hub, bus, "alice", []string{"news", "busy"}, head)
		is.True(errors.Is(err, broker.ErrCursorExpired))
		_, err = replay(t, hub, bus, "alice", []string{"busy"}, start)
		is.True(errors.Is(err, broker.ErrCursorExpired))
		keptFrom := busy[len(busy)-contractMaxPerChannel-1] // the last one dropped
		frames, err := replay(t, hub, bus, "alice", []string{"busy"}, broker.Cursor{Epoch: head.Epoch, Seq: keptFrom.Seq})
		is.NoErr(err)
		is.Equal(frameSeqs(frames), seqsOf(busy[len(busy)-contractMaxPerChannel:]))
		// Channels the connection does not hold do not expire its cursor.
		frames, err = replay(t, hub, bus, "alice", []string{"news"}, start)
		is.NoErr(err)
		is.Equal(len(frames), 2)
	})

	t.Run("replay refuses a cursor older than the inbox keeps", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, newLog(t, inbox.Limits{MaxPerUser: 3}))
		ctx := t.Context()
		start, err := bus.Head(ctx)
		is.NoErr(err)
		var out []broker.Notification
		for range 5 {
			o, err := bus.Publish(ctx, note("alice"))
			is.NoErr(err)
			out = append(out, o...)
		}
		_, err = replay(t, hub, bus, "alice", nil, start)
		is.True(errors.Is(err, broker.ErrCursorExpired))
		frames, err := replay(t, hub, bus, "alice", nil, broker.Cursor{Epoch: start.Epoch, Seq: out[1].Seq})
		is.NoErr(err)
		is.Equal(frameSeqs(frames), seqsOf(out[2:]))
		// Another user's cursor is not affected by alice's retention.
		frames, err = replay(t, hub, bus, "bob", nil, start)
		is.NoErr(err)
		is.Equal(len(frames), 0)
	})

	t.Run("notify user reaches every connection of that user", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, newLog(t, inbox.Limits{}))
		tab1, tab2, bob := newRecorder(nil), newRecorder(nil), newRecorder(nil)
		is.NoErr(hub.Register("tab1", "alice", nil, tab1))
		is.NoErr(hub.Register("tab2", "alice", []string{"news"}, tab2))
		is.NoErr(hub.Register("bob", "bob", []string{"news"}, bob))
		before, err := bus.Head(t.Context())
		is.NoErr(err)

		f := broker.EventFrame("read", map[string]any{"id": "n1", "unread": 3})
		is.NoErr(bus.NotifyUser(t.Context(), "alice", f))
		for _, c := range []*recorder{tab1, tab2} {
			got := c.wait(t, 1)
			is.Equal(got[0].Event, "read")
			is.Equal(decode(t, got[0]), map[string]any{"event": "read", "id": "n1", "unread": float64(3)})
		}
		// Control frames are not stored, sequenced or replayed.
		after, err := bus.Head(t.Context())
		is.NoErr(err)
		is.Equal(after, before)
		frames, err := replay(t, hub, bus, "alice", []string{"news"}, before)
		is.NoErr(err)
		is.Equal(len(frames), 0)
		// A marker proves bob got nothing before it.
		_, err = bus.Publish(t.Context(), note("bob"))
		is.NoErr(err)
		is.Equal(bob.wait(t, 1)[0].Event, "")
		is.NoErr(bus.NotifyUser(t.Context(), "nobody-online", f))
	})

	t.Run("subscribe and unsubscribe change delivery", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, newLog(t, inbox.Limits{}))
		ctx := t.Context()
		alice := newRecorder(nil)
		is.NoErr(hub.Register("c-alice", "alice", []string{"news"}, alice))

		sub, err := bus.Subscribe(ctx, broker.ChannelChange{ConnID: "c-alice", Channels: []string{"tech", "news"}})
		is.NoErr(err)
		is.Equal(sub, broker.Subscription{ConnectionID: "c-alice", UserID: "alice", Channels: []string{"news", "tech"}})
		first, err := bus.Publish(ctx, broadcast("tech"))
		is.NoErr(err)
		is.Equal(alice.wait(t, 1)[0].Seq, first[0].Seq)

		sub, err = bus.Unsubscribe(ctx, broker.ChannelChange{ConnID: "c-alice", Channels: []string{"tech"}})
		is.NoErr(err)
		is.Equal(sub.Channels, []string{"news"})
		_, err = bus.Publish(ctx, broadcast("tech"))
		is.NoErr(err)
		marker, err := bus.Publish(ctx, broadcast("news"))
		is.NoErr(err)
		is.Equal(frameSeqs(alice.wait(t, 2)), []uint64{first[0].Seq, marker[0].Seq})

		_, err = bus.Subscribe(ctx, broker.ChannelChange{ConnID: "no-such-connection", Channels: []string{"tech"}})
		if !errors.Is(err, broker.ErrUnknownConnection) {
			t.Fatalf("subscribe of an unknown connection: %v, want ErrUnknownConnection", err)
		}
		_, err = bus.Unsubscribe(ctx, broker.ChannelChange{ConnID: "no-such-connection", Channels: []string{"tech"}})
		if !errors.Is(err, broker.ErrUnknownConnection) {
			t.Fatalf("unsubscribe of an unknown connection: %v, want ErrUnknownConnection", err)
		}
	})

	t.Run("channel names holding , ; = @ and . are delivered and replayed whole", func(t *testing.T) {
		// Laravel and Pusher channel names may hold ',' and ';': a bus
		// that joins or splits channel lists on either would deliver to
		// the pieces and replay nothing.
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, newLog(t, inbox.Limits{}))
		ctx := t.Context()
		const odd = "private-a,b;c=d@e.f"
		before, err := bus.Head(ctx)
		is.NoErr(err)
		live := newRecorder(nil)
		is.NoErr(hub.Register("c-odd", "alice", []string{odd}, live))
		pieces := newRecorder(nil) // what a split on ',' or ';' would make of it
		is.NoErr(hub.Register("c-pieces", "bob", []string{"private-a", "b", "b;c=d@e.f", "c=d@e.f", "private-a,b"}, pieces))

		out, err := bus.Publish(ctx, broadcast(odd), broadcast("news", odd), noteOn("carol", odd))
		is.NoErr(err)
		got := live.wait(t, 2) // the broadcasts; carol's notification is carol's
		is.Equal(frameSeqs(got), []uint64{out[0].Seq, out[1].Seq})
		is.Equal(decode(t, got[0])["channels"], []any{odd})
		is.Equal(decode(t, got[1])["channels"], []any{"news", odd})
		marker, err := bus.Publish(ctx, broadcast("b"))
		is.NoErr(err)
		is.Equal(frameSeqs(pieces.wait(t, 1)), []uint64{marker[0].Seq}) // the pieces got nothing before it

		frames, err := replay(t, hub, bus, "alice", []string{odd}, before)
		is.NoErr(err)
		is.Equal(frameSeqs(frames), frameSeqs(got))
		for i := range frames {
			is.Equal(string(frames[i].JSON), string(got[i].JSON)) // replayed as delivered
		}
	})

	t.Run("concurrent publishers deliver in sequence order", func(t *testing.T) {
		is := is.New(t)
		hub := broker.NewHub(0)
		bus := newBus(t, hub, newLog(t, inbox.Limits{}))
		ctx := t.Context()
		alice := newRecorder(nil)
		is.NoErr(hub.Register("c-alice", "alice", []string{"news"}, alice))
		bob := newRecorder(nil)
		is.NoErr(hub.Register("c-bob", "bob", []string{"news", "tech"}, bob))

		const publishers, each = 4, 100
		var wg sync.WaitGroup
		results := make([][]broker.Notification, publishers)
		errs := make([]error, publishers)
		for p := range publishers {
			wg.Go(func() {
				for i := range each {
					var ns []broker.Notification
					switch (p + i) % 4 {
					case 0:
						ns = []broker.Notification{note("alice")}
					case 1:
						ns = []broker.Notification{broadcast("news")}
					case 2:
						ns = []broker.Notification{note("bob"), broadcast("tech")}
					case 3:
						ns = []broker.Notification{broadcast("news", "tech"), noteOn("alice", "news")}
					}
					out, err := bus.Publish(ctx, ns...)
					if err != nil {
						errs[p] = err
						return
					}
					results[p] = append(results[p], out...)
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			is.NoErr(err)
		}

		var wantAlice, wantBob []uint64
		for _, out := range results {
			for _, n := range out {
				if broker.Matches(n, "alice", func(ch string) bool { return ch == "news" }) {
					wantAlice = append(wantAlice, n.Seq)
				}
				if broker.Matches(n, "bob", func(ch string) bool { return ch == "news" || ch == "tech" }) {
					wantBob = append(wantBob, n.Seq)
				}
			}
		}
		slices.Sort(wantAlice)
		slices.Sort(wantBob)
		is.Equal(frameSeqs(alice.wait(t, len(wantAlice))), wantAlice) // every one, once, in sequence order
		is.Equal(frameSeqs(bob.wait(t, len(wantBob))), wantBob)
	})
}
