package broker_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/inbox"
)

func TestMemoryBus(t *testing.T) {
	testBus(t, func(t *testing.T, hub *broker.Hub, log broker.UserLog) broker.Bus {
		return broker.NewMemory(hub, log, broker.HistoryLimits{MaxPerChannel: contractMaxPerChannel}, nil)
	}, func(t *testing.T, limits inbox.Limits) broker.UserLog { return inbox.NewMemory(limits) })
}

// TestMemoryPublishEncodesOnce: one publish builds one frame, and that very
// frame reaches every connection, so the cost of encoding does not grow with
// the audience.
func TestMemoryPublishEncodesOnce(t *testing.T) {
	is := is.New(t)
	hub := broker.NewHub(0)
	var mu sync.Mutex
	reached := map[string]int{}
	bus := broker.NewMemory(hub, inbox.NewMemory(inbox.Limits{}), broker.HistoryLimits{}, func(n broker.Notification, r int) {
		mu.Lock()
		defer mu.Unlock()
		reached[n.ID] += r
	})
	conns := []*recorder{newRecorder(nil), newRecorder(nil), newRecorder(nil), newRecorder(nil)}
	is.NoErr(hub.Register("c0", "alice", []string{"news"}, conns[0]))
	is.NoErr(hub.Register("c1", "alice", []string{"news", "tech"}, conns[1]))
	is.NoErr(hub.Register("c2", "bob", []string{"tech"}, conns[2]))
	is.NoErr(hub.Register("c3", "carol", []string{"sports"}, conns[3]))

	b := broadcast("news", "tech")
	_, err := bus.Publish(t.Context(), b)
	is.NoErr(err)
	first := conns[0].wait(t, 1)[0]
	for _, c := range conns[1:3] {
		is.True(c.wait(t, 1)[0] == first) // the same *Frame
	}
	is.Equal(len(conns[3].got()), 0)

	u := noteOn("alice", "news")
	_, err = bus.Publish(t.Context(), u)
	is.NoErr(err)
	is.True(conns[0].wait(t, 2)[1] == conns[1].wait(t, 2)[1])

	// The delivery observer hears once per notification, with the count.
	mu.Lock()
	defer mu.Unlock()
	is.Equal(reached, map[string]int{b.ID: 3, u.ID: 2})
}

// TestMemoryNewEpochExpiresOldCursors: a restarted process (a new memory
// bus) does not honour cursors of the one before, even if their sequence
// numbers happen to exist again.
func TestMemoryNewEpochExpiresOldCursors(t *testing.T) {
	is := is.New(t)
	store := inbox.NewMemory(inbox.Limits{})
	before := broker.NewMemory(broker.NewHub(0), store, broker.HistoryLimits{}, nil)
	_, err := before.Publish(t.Context(), note("alice"), note("alice"))
	is.NoErr(err)
	old, err := before.Head(t.Context())
	is.NoErr(err)

	hub := broker.NewHub(0)
	after := broker.NewMemory(hub, inbox.NewMemory(inbox.Limits{}), broker.HistoryLimits{}, nil)
	_, err = after.Publish(t.Context(), note("alice"), note("alice"), note("alice"))
	is.NoErr(err)
	head, err := after.Head(t.Context())
	is.NoErr(err)
	is.True(head.Epoch != old.Epoch)

	_, err = replay(t, hub, after, "alice", nil, broker.Cursor{Epoch: old.Epoch, Seq: 1})
	is.True(errors.Is(err, broker.ErrCursorExpired))
	// The cursor's string form survives the trip through a client.
	parsed, err := broker.ParseCursor(head.String())
	is.NoErr(err)
	is.Equal(parsed, head)
}
