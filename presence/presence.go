// Package presence owns who is in each presence channel (Pusher's
// presence-… channels): which users are members, with the user_info of
// each, counted once per user however many connections, tabs or instances
// the user is on. It tells its caller when a user becomes a member (first
// connection in) and stops being one (last connection out, or the instance
// holding it died), so member_added and member_removed fire exactly once per
// change across every instance.
//
// It does not speak the Pusher protocol, authorize subscriptions, parse
// channel_data or broadcast anything: the WebSocket transport does, and
// calls this package as connections subscribe and leave.
package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Member is one user present in a channel.
type Member struct {
	// UserID is channel_data's user_id as text. Two connections with the
	// same UserID are one member.
	UserID string
	// Info is user_info as the app's auth endpoint gave it (compact JSON),
	// nil when there was none. Callers must not modify the bytes of a
	// Member the store returned.
	Info json.RawMessage
}

// DefaultMaxMembers is Pusher's default bound on a presence channel's
// members ("presence channels are limited to 100 members").
const DefaultMaxMembers = 100

var (
	// ErrFull means a user who is not yet a member tried to join a channel
	// that already has its maximum of members. Nothing was recorded.
	ErrFull = errors.New("presence: channel is full")
	// ErrConnInUse means the connection is already in the channel as
	// another user. Nothing was changed.
	ErrConnInUse = errors.New("presence: connection is in the channel as another user")
)

// Events receives what Run learns by itself, as opposed to what Join and
// Leave return. Run calls them from its own goroutine, one at a time,
// between heartbeats: they must return promptly (hand the broadcast to the
// bus; do not wait on clients), since an instance whose heartbeat waits
// longer than its lapse is taken for dead. A nil field is not called.
type Events struct {
	// Removed is called for each member that stopped being one without a
	// Leave saying so: the instance holding the user's last connection in
	// channel was killed (its heartbeat lapsed and some instance swept it)
	// or stopped (its Run ended), or a Leave that failed was sent again by
	// Run. Across all instances sharing a store it is called once per
	// removal, on whichever instance removed it. The caller broadcasts
	// member_removed to the channel.
	Removed func(channel, userID string)
	// Lapsed is called when this instance finds that it was taken for
	// dead (it could not renew its heartbeat in time: Redis out of reach,
	// a stall, or Redis lost its data): the memberships it recorded before
	// may have been removed, and reported through Removed, by whichever
	// instance swept them. The caller must Join again every presence
	// subscription still open (broadcasting member_added for each added
	// member), or close those connections so their clients reconnect.
	// Joining again is safe whether or not a membership was swept, and
	// Lapsed comes after the Removed calls of the sweep that found it.
	Lapsed func()
}

// Store holds the members of presence channels. Implementations are safe
// for concurrent use and share contract_test.go.
//
// A connection is in a channel as one member. Connection ids are unique
// across every instance sharing the store (Pusher socket ids). Every method
// is atomic with respect to every other, also across instances: of two
// connections of one user joining at once exactly one is told added, of
// two leaving at once exactly one is told removed.
//
// A store shared by instances (Redis) fails with an error wrapping
// store.ErrUnavailable while it cannot be reached. Unlike the other
// stores', a Join or Leave that fails that way may have taken effect (the
// answer, not the command, may be what was lost): both are idempotent, so
// the caller repeats a Join, or undoes it with Leave. A Leave that failed
// that way the store sends again itself from Run, until it is answered,
// reporting its removal through Events.Removed; a Join of the same
// connection to the same channel cancels it. Other errors than ErrFull and
// ErrConnInUse are bugs (an empty name, an unexpected reply).
type Store interface {
	// Join records that connection connID is in channel as member m, and
	// returns every member of the channel after the join, sorted by
	// UserID, and whether m.UserID became a member with it (the first of
	// the user's connections: broadcast member_added). Joining again with
	// the same connID and user changes nothing but the info. The info kept
	// for a user is the one of its latest Join. A user who is not a member
	// yet gets ErrFull when the channel holds its maximum of members.
	Join(ctx context.Context, channel, connID string, m Member) (members []Member, added bool, err error)
	// Leave removes connection connID from channel and returns the user it
	// was in the channel as, and whether that was the user's last
	// connection there (broadcast member_removed). A connection that is
	// not in the channel gives "" and false, and no error.
	Leave(ctx context.Context, channel, connID string) (userID string, removed bool, err error)
	// Members returns the members of channel, sorted by UserID; none for a
	// channel nobody is in.
	Members(ctx context.Context, channel string) ([]Member, error)
	// Run keeps this instance's memberships alive and removes those of
	// instances that died, reporting to events, until ctx ends. Then it
	// removes this instance's remaining memberships, reports each member
	// removed that way through events.Removed, and returns: the caller
	// keeps whatever events publishes to (the bus) working until Run has
	// returned. It returns nil, or the error that kept it from removing
	// everything (the memberships left are then removed by other instances
	// within the store's bound, or gone with the process in memory mode).
	// Call it once, before serving connections.
	Run(ctx context.Context, events Events) error
}

// checkJoin rejects what no store can record.
func checkJoin(channel, connID string, m Member) error {
	if err := checkLeave(channel, connID); err != nil {
		return err
	}
	if m.UserID == "" {
		return fmt.Errorf("presence: join %s as %s: empty user id", channel, connID)
	}
	return nil
}

func checkLeave(channel, connID string) error {
	if channel == "" {
		return errors.New("presence: empty channel name")
	}
	if connID == "" {
		return fmt.Errorf("presence: channel %s: empty connection id", channel)
	}
	return nil
}

// sortMembers orders members by UserID, the order every listing follows.
func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.UserID, b.UserID) })
}

func (e Events) removed(channel, userID string) {
	if e.Removed != nil {
		e.Removed(channel, userID)
	}
}

func (e Events) lapsed() {
	if e.Lapsed != nil {
		e.Lapsed()
	}
}
