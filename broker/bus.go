package broker

import (
	"context"
	"slices"
	"sort"
	"time"
)

// Bus carries notifications and control events to every instance's hub.
// The memory bus serves one process; a Redis bus
// (docs/ARCHITECTURE.md#redis-mode-keys-and-scripts) serves many behind the
// same contract, proven by contract_test.go.
//
// A bus that shares its state through a store (Redis) fails with an error
// wrapping store.ErrUnavailable while that store cannot be reached: nothing
// was done, and the caller may retry (Publish below says the one case where
// something may have been done). Head does not fail for that: it answers
// where local delivery stands.
type Bus interface {
	// Publish assigns each notification its sequence number, stores it
	// (user-addressed ones in their inboxes, broadcasts in the history of
	// each of their channels) and delivers it to every matching live
	// connection, as one step: no connection sees a notification before it
	// is stored, and every connection sees notifications in sequence
	// order. It returns the notifications with Seq set. On error nothing
	// was stored or delivered, with one exception: a Redis bus that lost
	// the answer (a timeout, a reset) returns an error wrapping
	// store.ErrUnavailable although the publish may have happened.
	// Publishing the same notification ids again is then safe: the Redis
	// bus recognises ids it published in the last minutes and returns
	// their sequence numbers without publishing them twice.
	Publish(ctx context.Context, ns ...Notification) ([]Notification, error)
	// Head is the cursor of the newest notification published so far. A
	// new connection replays from the Head it read before registering, so
	// nothing published while it connects falls between the two.
	Head(ctx context.Context) (Cursor, error)
	// Replay returns, oldest first, every notification after cursor that
	// the registered local connection connID should have received: its
	// user's, and broadcasts on the channels it holds at the moment of the
	// call. Reading those channels and the head is one step with respect
	// to Publish, so a channel subscribed while a connection catches up is
	// either replayed or delivered live, never neither. It returns an
	// error wrapping ErrCursorExpired when that set cannot be given whole,
	// and ErrUnknownConnection when connID is not registered.
	Replay(ctx context.Context, connID string, after Cursor) ([]*Frame, error)
	// NotifyUser delivers a control frame (read, deleted, subscribed, ...)
	// to every live connection of userID, wherever it lives. Control frames
	// are not stored or replayed.
	NotifyUser(ctx context.Context, userID string, f *Frame) error
	// NotifyChannel delivers a control frame (a presence member joining, a
	// client event) to every live connection subscribed to channel,
	// wherever it lives, but except ("": none), in order with
	// notifications. Its Event and Only travel with it; it is not stored
	// or replayed.
	NotifyChannel(ctx context.Context, channel string, f *Frame, except string) error
	// Subscribe and Unsubscribe change the channels of a live connection,
	// wherever it lives: ErrUnknownConnection if none has that id,
	// ErrNotOwner if the change names an owner and the connection belongs
	// to another user.
	Subscribe(ctx context.Context, change ChannelChange) (Subscription, error)
	Unsubscribe(ctx context.Context, change ChannelChange) (Subscription, error)
}

// ChannelChange names a live connection and channels to add or remove.
type ChannelChange struct {
	ConnID   string
	Channels []string
	// Owner, when set, is the user the connection must belong to: a
	// browser changing its own connection's channels. Empty: any (the
	// backend, or the connection itself).
	Owner string
}

// UserLog is what the bus needs of the inbox: append before delivering, and
// the ordered lookup for replay. inbox.Store satisfies it.
type UserLog interface {
	Append(ctx context.Context, ns ...Notification) error
	Since(ctx context.Context, userID string, after uint64) ([]Notification, error)
}

// HistoryLimits bound the per-channel history of broadcasts kept for
// replay: whichever is reached first drops the oldest.
type HistoryLimits struct {
	MaxPerChannel int
	MaxAge        time.Duration
}

// DeliveryFunc observes each publish on this instance: how many local
// connections it reached. The audit log and the analytics hang off it. n
// carries the ID, UserID, Channels, Seq, Type and Timestamp of the
// notification (its Title, Message and Data only on the memory bus).
type DeliveryFunc func(n Notification, reached int)

// replayFrames completes a replay: it adds the user's own notifications
// (from its inbox, own) to the broadcasts found in the channel histories
// (missed), keeps only what the connection should have received up to
// head, and encodes them oldest first, each once.
func replayFrames(missed, own []Notification, userID string, channels []string, head uint64, epoch string) ([]*Frame, error) {
	subscribed := make(map[string]struct{}, len(channels))
	for _, ch := range channels {
		subscribed[ch] = struct{}{}
	}
	isSubscribed := func(ch string) bool { _, ok := subscribed[ch]; return ok }
	for _, n := range own {
		// Entries newer than head were published after the histories were
		// read; they reach the connection live. Replaying them here would
		// move its de-duplication mark past broadcasts it has not seen yet.
		if n.Seq <= head && Matches(n, userID, isSubscribed) {
			missed = append(missed, n)
		}
	}
	// A broadcast on several subscribed channels sits in each history.
	sort.Slice(missed, func(i, j int) bool { return missed[i].Seq < missed[j].Seq })
	missed = slices.CompactFunc(missed, func(a, b Notification) bool { return a.Seq == b.Seq })

	frames := make([]*Frame, 0, len(missed))
	for _, n := range missed {
		f, err := NotificationFrame(n, epoch)
		if err != nil {
			return nil, err
		}
		frames = append(frames, f)
	}
	return frames, nil
}
