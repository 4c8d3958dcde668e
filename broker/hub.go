package broker

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Conn is the hub's view of a live connection. Deliver must not block: a
// connection queues the frame or, when its queue is full, closes itself
// with a reason. That is what keeps one slow consumer from delaying
// everyone else.
type Conn interface {
	Deliver(f *Frame)
}

var (
	// ErrUnknownConnection means no live connection has that id here.
	ErrUnknownConnection = errors.New("broker: unknown connection")
	// ErrTooManyChannels means a subscription would exceed the
	// per-connection channel limit.
	ErrTooManyChannels = errors.New("broker: too many channels for one connection")
	// ErrDuplicateConnection means a connection id is already registered.
	ErrDuplicateConnection = errors.New("broker: duplicate connection id")
	// ErrNotOwner means a connection belongs to another user than the one
	// a change names.
	ErrNotOwner = errors.New("broker: the connection belongs to another user")
)

// Subscription is a connection's channel set after a change.
type Subscription struct {
	ConnectionID string   `json:"connection_id"`
	UserID       string   `json:"user_id"`
	Channels     []string `json:"channels"`
}

// Matches is the routing rule (docs/ARCHITECTURE.md#the-routing-rule): does a connection of userID
// subscribed to channels receive n?
func Matches(n Notification, userID string, subscribed func(channel string) bool) bool {
	if n.UserID != "" {
		if n.UserID != userID {
			return false
		}
		if len(n.Channels) == 0 {
			return true
		}
	}
	for _, ch := range n.Channels {
		if subscribed(ch) {
			return true
		}
	}
	return false
}

type member struct {
	id       string
	userID   string
	channels map[string]struct{}
	conn     Conn
}

func (m *member) subscribed(ch string) bool {
	_, ok := m.channels[ch]
	return ok
}

// Hub is the local fan-out: it indexes this instance's live connections by
// id, user and channel, and hands each frame to every matching connection
// exactly once. It never touches a socket.
type Hub struct {
	maxChannels int

	mu        sync.RWMutex
	byID      map[string]*member
	byUser    map[string]map[*member]struct{}
	byChannel map[string]map[*member]struct{}
}

// NewHub returns an empty hub allowing at most maxChannels channels per
// connection (0: no limit).
func NewHub(maxChannels int) *Hub {
	return &Hub{
		maxChannels: maxChannels,
		byID:        make(map[string]*member),
		byUser:      make(map[string]map[*member]struct{}),
		byChannel:   make(map[string]map[*member]struct{}),
	}
}

// Register adds a live connection with its initial channels.
func (h *Hub) Register(id, userID string, channels []string, c Conn) error {
	if h.maxChannels > 0 && len(channels) > h.maxChannels {
		return fmt.Errorf("broker: register %s: %w", id, ErrTooManyChannels)
	}
	m := &member{id: id, userID: userID, channels: make(map[string]struct{}, len(channels)), conn: c}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.byID[id]; dup {
		return fmt.Errorf("broker: register %s: %w", id, ErrDuplicateConnection)
	}
	h.byID[id] = m
	if userID != "" {
		addTo(h.byUser, userID, m)
	}
	for _, ch := range channels {
		m.channels[ch] = struct{}{}
		addTo(h.byChannel, ch, m)
	}
	return nil
}

// Unregister removes a connection; unknown ids are ignored.
func (h *Hub) Unregister(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.byID[id]
	if !ok {
		return
	}
	delete(h.byID, id)
	if m.userID != "" {
		removeFrom(h.byUser, m.userID, m)
	}
	for ch := range m.channels {
		removeFrom(h.byChannel, ch, m)
	}
}

// SetUser makes a connection registered without a user (a Pusher
// connection, until it subscribes to its user's private channel) the
// user's, or no one's again with "": from then on it receives the user's
// notifications and control frames.
func (h *Hub) SetUser(id, userID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.byID[id]
	if !ok {
		return fmt.Errorf("broker: set user of %s: %w", id, ErrUnknownConnection)
	}
	if m.userID != "" {
		removeFrom(h.byUser, m.userID, m)
	}
	m.userID = userID
	if userID != "" {
		addTo(h.byUser, userID, m)
	}
	return nil
}

// changeOp is which way a ChannelChange goes.
type changeOp string

const (
	opSubscribe   changeOp = "subscribe"
	opUnsubscribe changeOp = "unsubscribe"
)

// apply makes change (op) on a connection held here, once its owner, if
// the change names one, is checked. The owner of a connection does not
// change while a browser asks (only a Pusher connection adopts its user, at
// its own request), so checking first and changing next is enough.
func (h *Hub) apply(op changeOp, c ChannelChange) (Subscription, error) {
	if c.Owner != "" {
		if sub, ok := h.Connection(c.ConnID); ok && sub.UserID != c.Owner {
			return Subscription{}, fmt.Errorf("broker: %s %s: %w", op, c.ConnID, ErrNotOwner)
		}
	}
	if op == opUnsubscribe {
		return h.Unsubscribe(c.ConnID, c.Channels)
	}
	return h.Subscribe(c.ConnID, c.Channels)
}

// Subscribe adds channels to a connection and returns its whole set.
func (h *Hub) Subscribe(id string, channels []string) (Subscription, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.byID[id]
	if !ok {
		return Subscription{}, fmt.Errorf("broker: subscribe %s: %w", id, ErrUnknownConnection)
	}
	added := 0
	for _, ch := range channels {
		if !m.subscribed(ch) {
			added++
		}
	}
	if h.maxChannels > 0 && len(m.channels)+added > h.maxChannels {
		return Subscription{}, fmt.Errorf("broker: subscribe %s: %w", id, ErrTooManyChannels)
	}
	for _, ch := range channels {
		if !m.subscribed(ch) {
			m.channels[ch] = struct{}{}
			addTo(h.byChannel, ch, m)
		}
	}
	return m.subscription(), nil
}

// Unsubscribe removes channels from a connection and returns its whole set.
func (h *Hub) Unsubscribe(id string, channels []string) (Subscription, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.byID[id]
	if !ok {
		return Subscription{}, fmt.Errorf("broker: unsubscribe %s: %w", id, ErrUnknownConnection)
	}
	for _, ch := range channels {
		if m.subscribed(ch) {
			delete(m.channels, ch)
			removeFrom(h.byChannel, ch, m)
		}
	}
	return m.subscription(), nil
}

func (m *member) subscription() Subscription {
	chans := make([]string, 0, len(m.channels))
	for ch := range m.channels {
		chans = append(chans, ch)
	}
	slices.Sort(chans)
	return Subscription{ConnectionID: m.id, UserID: m.userID, Channels: chans}
}

// Deliver hands f, the encoding of n, to every local connection the routing
// rule selects, once each, but the one n excludes (n.Exclude: Laravel's
// toOthers), and says how many that was.
func (h *Hub) Deliver(n Notification, f *Frame) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	reached := 0
	if n.UserID != "" {
		for m := range h.byUser[n.UserID] {
			if m.id != n.Exclude && Matches(n, m.userID, m.subscribed) {
				m.conn.Deliver(f)
				reached++
			}
		}
		return reached
	}
	if len(n.Channels) == 1 {
		for m := range h.byChannel[n.Channels[0]] {
			if m.id != n.Exclude {
				m.conn.Deliver(f)
				reached++
			}
		}
		return reached
	}
	// Several channels: a connection subscribed to more than one of them
	// still gets the notification once. The set is sized for every
	// member of those channels, so it never grows while filling.
	size := 0
	for _, ch := range n.Channels {
		size += len(h.byChannel[ch])
	}
	seen := make(map[*member]struct{}, size)
	for _, ch := range n.Channels {
		for m := range h.byChannel[ch] {
			if _, dup := seen[m]; dup || m.id == n.Exclude {
				continue
			}
			seen[m] = struct{}{}
			m.conn.Deliver(f)
			reached++
		}
	}
	return reached
}

// DeliverToChannel hands a control frame to every local connection
// subscribed to channel but except ("": none), and says how many that was.
func (h *Hub) DeliverToChannel(channel string, f *Frame, except string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	reached := 0
	for m := range h.byChannel[channel] {
		if m.id != except {
			m.conn.Deliver(f)
			reached++
		}
	}
	return reached
}

// DeliverToUser hands a control frame to every local connection of userID.
func (h *Hub) DeliverToUser(userID string, f *Frame) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for m := range h.byUser[userID] {
		m.conn.Deliver(f)
	}
	return len(h.byUser[userID])
}

// Connection returns a live connection's user and channels.
func (h *Hub) Connection(id string) (Subscription, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	m, ok := h.byID[id]
	if !ok {
		return Subscription{}, false
	}
	return m.subscription(), true
}

// Each calls fn for every live connection. fn must not block or call back
// into the hub.
func (h *Hub) Each(fn func(Conn)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, m := range h.byID {
		fn(m.conn)
	}
}

// Len is the number of live connections.
func (h *Hub) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.byID)
}

func addTo(index map[string]map[*member]struct{}, key string, m *member) {
	set := index[key]
	if set == nil {
		set = make(map[*member]struct{})
		index[key] = set
	}
	set[m] = struct{}{}
}

func removeFrom(index map[string]map[*member]struct{}, key string, m *member) {
	set := index[key]
	delete(set, m)
	if len(set) == 0 {
		delete(index, key)
	}
}
