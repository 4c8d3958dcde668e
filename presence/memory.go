package presence

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
)

// Memory is the Store of a single process: every channel in one map under
// one lock. There is no other instance to die, so Run has nothing to do
// until the process stops.
type Memory struct {
	maxMembers int

	mu       sync.Mutex
	channels map[string]*memoryChannel
}

var _ Store = (*Memory)(nil)

// memoryChannel is one channel: a channel with no connection left is
// deleted, so the map holds only channels someone is in.
type memoryChannel struct {
	conns map[string]string // connection id -> user id
	users map[string]*memoryUser
}

type memoryUser struct {
	conns int // connections of the user in the channel, at least 1
	info  []byte
}

// NewMemory returns an empty store whose channels hold at most maxMembers
// members each (DefaultMaxMembers when maxMembers is 0 or less).
func NewMemory(maxMembers int) *Memory {
	if maxMembers <= 0 {
		maxMembers = DefaultMaxMembers
	}
	return &Memory{maxMembers: maxMembers, channels: make(map[string]*memoryChannel)}
}

// Join implements Store.
func (m *Memory) Join(_ context.Context, channel, connID string, member Member) ([]Member, bool, error) {
	if err := checkJoin(channel, connID, member); err != nil {
		return nil, false, err
	}
	// The caller may reuse its buffer; members handed out share this copy.
	info := slices.Clone(member.Info)
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channels[channel]
	if ch == nil {
		ch = &memoryChannel{conns: make(map[string]string), users: make(map[string]*memoryUser)}
		m.channels[channel] = ch
	}
	added := false
	switch user, joined := ch.conns[connID]; {
	case joined && user != member.UserID:
		return nil, false, fmt.Errorf("presence: join %s as %s for user %s: %w", channel, connID, member.UserID, ErrConnInUse)
	case joined:
		ch.users[user].info = info
	default:
		u := ch.users[member.UserID]
		if u == nil {
			if len(ch.users) >= m.maxMembers {
				return nil, false, fmt.Errorf("presence: join %s as %s for user %s (%d members): %w", channel, connID, member.UserID, len(ch.users), ErrFull)
			}
			u = &memoryUser{}
			ch.users[member.UserID] = u
			added = true
		}
		u.conns++
		u.info = info
		ch.conns[connID] = member.UserID
	}
	return ch.members(), added, nil
}

// Leave implements Store.
func (m *Memory) Leave(_ context.Context, channel, connID string) (string, bool, error) {
	if err := checkLeave(channel, connID); err != nil {
		return "", false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channels[channel]
	if ch == nil {
		return "", false, nil
	}
	user, ok := ch.conns[connID]
	if !ok {
		return "", false, nil
	}
	delete(ch.conns, connID)
	u := ch.users[user]
	u.conns--
	if u.conns > 0 {
		return user, false, nil
	}
	delete(ch.users, user)
	if len(ch.conns) == 0 {
		delete(m.channels, channel)
	}
	return user, true, nil
}

// Members implements Store.
func (m *Memory) Members(_ context.Context, channel string) ([]Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channels[channel]
	if ch == nil {
		return nil, nil
	}
	return ch.members(), nil
}

func (ch *memoryChannel) members() []Member {
	ms := make([]Member, 0, len(ch.users))
	for id, u := range ch.users {
		ms = append(ms, Member{UserID: id, Info: u.info})
	}
	sortMembers(ms)
	return ms
}

// Run implements Store. In one process nobody else can remove a member, so
// it only waits; when ctx ends it removes every membership, as the Redis
// store removes its instance's, and reports each member.
func (m *Memory) Run(ctx context.Context, events Events) error {
	<-ctx.Done()
	type removal struct{ channel, user string }
	var gone []removal
	m.mu.Lock()
	for name, ch := range m.channels {
		for user := range ch.users {
			gone = append(gone, removal{name, user})
		}
	}
	clear(m.channels)
	m.mu.Unlock()
	// Reported outside the lock: the callback publishes, and a Join it
	// caused must not deadlock.
	slices.SortFunc(gone, func(a, b removal) int {
		return cmp.Or(cmp.Compare(a.channel, b.channel), cmp.Compare(a.user, b.user))
	})
	for _, r := range gone {
		events.removed(r.channel, r.user)
	}
	return nil
}
