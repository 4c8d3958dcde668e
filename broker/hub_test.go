package broker

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/matryer/is"
)

// hubConn is a fake connection that records every frame the hub hands it.
type hubConn struct {
	mu     sync.Mutex
	frames []*Frame
}

func (c *hubConn) Deliver(f *Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, f)
}

func (c *hubConn) got() []*Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.frames)
}

// routingCases is the routing rule (docs/ARCHITECTURE.md#the-routing-rule)
// as a table: a connection of user alice subscribed to channels receives n,
// or not.
var routingCases = []struct {
	name       string
	n          Notification
	subscribed []string
	want       bool
}{
	{"user-addressed, no channels", Notification{UserID: "alice"}, nil, true},
	{"user-addressed, no channels, connection has channels", Notification{UserID: "alice"}, []string{"news"}, true},
	{"user-addressed with a subscribed channel", Notification{UserID: "alice", Channels: []string{"news"}}, []string{"news"}, true},
	{"user-addressed with a channel not subscribed", Notification{UserID: "alice", Channels: []string{"news"}}, []string{"sports"}, false},
	{"user-addressed with a channel, connection has none", Notification{UserID: "alice", Channels: []string{"news"}}, nil, false},
	{"other user, no channels", Notification{UserID: "bob"}, nil, false},
	{"other user on a subscribed channel", Notification{UserID: "bob", Channels: []string{"news"}}, []string{"news"}, false},
	{"broadcast on a subscribed channel", Notification{Channels: []string{"news"}}, []string{"news"}, true},
	{"broadcast on a channel not subscribed", Notification{Channels: []string{"news"}}, []string{"sports"}, false},
	{"broadcast, connection has no channels", Notification{Channels: []string{"news"}}, nil, false},
	{"broadcast on several channels, one subscribed", Notification{Channels: []string{"sports", "news", "tech"}}, []string{"news"}, true},
	{"broadcast on several channels, all subscribed", Notification{Channels: []string{"news", "tech"}}, []string{"news", "tech", "sports"}, true},
	{"broadcast on several channels, none subscribed", Notification{Channels: []string{"news", "tech"}}, []string{"sports"}, false},
	{"user on several channels, one subscribed", Notification{UserID: "alice", Channels: []string{"sports", "news"}}, []string{"news"}, true},
	{"user on several channels, all subscribed", Notification{UserID: "alice", Channels: []string{"sports", "news"}}, []string{"news", "sports"}, true},
	{"user on several channels, none subscribed", Notification{UserID: "alice", Channels: []string{"sports", "news"}}, []string{"tech"}, false},
	{"other user on several subscribed channels", Notification{UserID: "bob", Channels: []string{"sports", "news"}}, []string{"news", "sports"}, false},
	{"neither user nor channel", Notification{}, []string{"news"}, false},
}

func TestMatches(t *testing.T) {
	for _, tc := range routingCases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(Matches(tc.n, "alice", func(ch string) bool { return slices.Contains(tc.subscribed, ch) }), tc.want)
		})
	}
}

// TestHubDeliverFollowsMatches runs the same table through a real hub: the
// connection gets the frame exactly once when the rule says so, never
// otherwise, and bystanders are untouched.
func TestHubDeliverFollowsMatches(t *testing.T) {
	for _, tc := range routingCases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			h := NewHub(0)
			alice := &hubConn{}
			is.NoErr(h.Register("c-alice", "alice", tc.subscribed, alice))
			// A bystander of another user on no channel receives nothing
			// but what is addressed to it.
			carol := &hubConn{}
			is.NoErr(h.Register("c-carol", "carol", nil, carol))

			f := &Frame{Seq: 1}
			reached := h.Deliver(tc.n, f)

			want := 0
			if tc.want {
				want = 1
			}
			is.Equal(len(alice.got()), want) // delivered exactly once, or not at all
			is.Equal(reached, want)
			is.Equal(len(carol.got()), 0)
		})
	}
}

func TestHubDeliverOncePerConnection(t *testing.T) {
	is := is.New(t)
	h := NewHub(0)
	both := &hubConn{} // subscribed to both channels of the broadcast
	one := &hubConn{}  // subscribed to one of them
	none := &hubConn{} // subscribed to neither
	tab1 := &hubConn{} // alice, first tab
	tab2 := &hubConn{} // alice, second tab, on both channels
	is.NoErr(h.Register("both", "u1", []string{"a", "b", "c"}, both))
	is.NoErr(h.Register("one", "u2", []string{"b"}, one))
	is.NoErr(h.Register("none", "u3", []string{"z"}, none))
	is.NoErr(h.Register("tab1", "alice", []string{"a"}, tab1))
	is.NoErr(h.Register("tab2", "alice", []string{"a", "b"}, tab2))

	broadcast := &Frame{Seq: 1}
	is.Equal(h.Deliver(Notification{Channels: []string{"a", "b"}}, broadcast), 4)
	is.Equal(len(both.got()), 1)
	is.Equal(len(one.got()), 1)
	is.Equal(len(none.got()), 0)
	is.Equal(len(tab1.got()), 1)
	is.Equal(len(tab2.got()), 1)

	// A user-addressed notification on several channels: each of the
	// user's connections that subscribes to any of them, once.
	personal := &Frame{Seq: 2}
	is.Equal(h.Deliver(Notification{UserID: "alice", Channels: []string{"a", "b"}}, personal), 2)
	is.Equal(tab1.got(), []*Frame{broadcast, personal})
	is.Equal(tab2.got(), []*Frame{broadcast, personal})
	is.Equal(len(both.got()), 1) // other users' connections on those channels get nothing
}

// TestHubDeliverSharesOneFrame: the frame is encoded once and the same
// pointer reaches every connection, whatever its transport.
func TestHubDeliverSharesOneFrame(t *testing.T) {
	is := is.New(t)
	h := NewHub(0)
	conns := make([]*hubConn, 5)
	for i := range conns {
		conns[i] = &hubConn{}
		is.NoErr(h.Register(fmt.Sprint("c", i), fmt.Sprint("u", i%2), []string{"news", "tech"}, conns[i]))
	}
	f := &Frame{Seq: 7, JSON: []byte(`{"event":"notification"}`)}
	is.Equal(h.Deliver(Notification{Channels: []string{"news", "tech"}}, f), len(conns))
	for _, c := range conns {
		got := c.got()
		is.Equal(len(got), 1)
		is.True(got[0] == f) // the very same *Frame, not a copy
	}

	control := &Frame{Event: "read"}
	is.Equal(h.DeliverToUser("u0", control), 3)
	for i, c := range conns {
		got := c.got()
		if i%2 == 0 {
			is.Equal(len(got), 2)
			is.True(got[1] == control)
		} else {
			is.Equal(len(got), 1)
		}
	}
}

// indexes returns the hub's user and channel indexes as plain sets of
// connection ids, to check nothing is left behind.
func (h *Hub) indexes() (byID []string, byUser, byChannel map[string][]string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	flatten := func(index map[string]map[*member]struct{}) map[string][]string {
		out := make(map[string][]string, len(index))
		for k, set := range index {
			for m := range set {
				out[k] = append(out[k], m.id)
			}
			slices.Sort(out[k])
		}
		return out
	}
	for id := range h.byID {
		byID = append(byID, id)
	}
	slices.Sort(byID)
	return byID, flatten(h.byUser), flatten(h.byChannel)
}

func TestHubIndexCleanup(t *testing.T) {
	is := is.New(t)
	h := NewHub(0)
	c1, c2 := &hubConn{}, &hubConn{}
	is.NoErr(h.Register("c1", "alice", []string{"a", "b"}, c1))
	is.NoErr(h.Register("c2", "alice", []string{"b"}, c2))
	is.Equal(h.Len(), 2)

	sub, err := h.Subscribe("c1", []string{"c", "a"})
	is.NoErr(err)
	is.Equal(sub, Subscription{ConnectionID: "c1", UserID: "alice", Channels: []string{"a", "b", "c"}})
	ids, byUser, byChannel := h.indexes()
	is.Equal(ids, []string{"c1", "c2"})
	is.Equal(byUser, map[string][]string{"alice": {"c1", "c2"}})
	is.Equal(byChannel, map[string][]string{"a": {"c1"}, "b": {"c1", "c2"}, "c": {"c1"}})

	// Unsubscribing the last member of a channel drops the channel; a
	// channel still held by another connection stays; unknown channels
	// are ignored.
	sub, err = h.Unsubscribe("c1", []string{"a", "b", "never"})
	is.NoErr(err)
	is.Equal(sub.Channels, []string{"c"})
	_, _, byChannel = h.indexes()
	is.Equal(byChannel, map[string][]string{"b": {"c2"}, "c": {"c1"}})

	// Delivery follows the new subscriptions.
	is.Equal(h.Deliver(Notification{Channels: []string{"a"}}, &Frame{Seq: 1}), 0)
	is.Equal(h.Deliver(Notification{Channels: []string{"c"}}, &Frame{Seq: 2}), 1)
	is.Equal(len(c1.got()), 1)

	h.Unregister("c1")
	ids, byUser, byChannel = h.indexes()
	is.Equal(ids, []string{"c2"})
	is.Equal(byUser, map[string][]string{"alice": {"c2"}})
	is.Equal(byChannel, map[string][]string{"b": {"c2"}})
	h.Unregister("c1") // unknown ids are ignored
	h.Unregister("c2")
	ids, byUser, byChannel = h.indexes()
	is.Equal(len(ids), 0)
	is.Equal(len(byUser), 0)
	is.Equal(len(byChannel), 0)
	is.Equal(h.Len(), 0)

	// Nothing reaches an unregistered connection.
	is.Equal(h.Deliver(Notification{UserID: "alice"}, &Frame{Seq: 3}), 0)
	is.Equal(h.DeliverToUser("alice", &Frame{Event: "read"}), 0)
	is.Equal(len(c2.got()), 0)

	// An id is free again once unregistered.
	is.NoErr(h.Register("c1", "bob", nil, c1))
	_, byUser, _ = h.indexes()
	is.Equal(byUser, map[string][]string{"bob": {"c1"}})
}

func TestHubErrors(t *testing.T) {
	is := is.New(t)
	h := NewHub(3)
	c := &hubConn{}

	err := h.Register("c1", "alice", []string{"a", "b", "c", "d"}, c)
	is.True(errors.Is(err, ErrTooManyChannels))
	is.Equal(h.Len(), 0) // a refused registration leaves nothing behind
	ids, byUser, byChannel := h.indexes()
	is.Equal(len(ids)+len(byUser)+len(byChannel), 0)

	is.NoErr(h.Register("c1", "alice", []string{"a", "b"}, c))
	err = h.Register("c1", "bob", nil, &hubConn{})
	is.True(errors.Is(err, ErrDuplicateConnection))
	_, byUser, _ = h.indexes()
	is.Equal(byUser, map[string][]string{"alice": {"c1"}})

	// Channels already held do not count against the limit.
	sub, err := h.Subscribe("c1", []string{"a", "b", "c"})
	is.NoErr(err)
	is.Equal(sub.Channels, []string{"a", "b", "c"})
	_, err = h.Subscribe("c1", []string{"a", "d"})
	is.True(errors.Is(err, ErrTooManyChannels))
	_, _, byChannel = h.indexes()
	is.Equal(byChannel, map[string][]string{"a": {"c1"}, "b": {"c1"}, "c": {"c1"}}) // unchanged

	_, err = h.Subscribe("nope", []string{"a"})
	is.True(errors.Is(err, ErrUnknownConnection))
	_, err = h.Unsubscribe("nope", []string{"a"})
	is.True(errors.Is(err, ErrUnknownConnection))

	// No limit: NewHub(0).
	unlimited := NewHub(0)
	many := make([]string, 500)
	for i := range many {
		many[i] = fmt.Sprint("ch", i)
	}
	is.NoErr(unlimited.Register("c1", "alice", many, c))
}
