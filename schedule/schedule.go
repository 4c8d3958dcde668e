// Package schedule owns notifications that wait for a time: keeping them,
// listing and cancelling them, and firing each exactly once when it is due.
// Firing hands the item to a function the caller gives Run; the scheduler
// never publishes or stores notifications itself.
package schedule

import (
	"cmp"
	"context"
	"errors"
	"time"

	"notification-service/broker"
)

// Item is one scheduled send. Notifications holds what will be published
// (one per addressed user, or one broadcast); their ID is the item's ID and
// their Timestamp is set when the item fires.
type Item struct {
	ID            string
	ScheduledAt   time.Time
	CreatedAt     time.Time
	Notifications []broker.Notification
}

// UserIDs lists the users the item is addressed to, in order.
func (it Item) UserIDs() []string {
	var ids []string
	for _, n := range it.Notifications {
		if n.UserID != "" {
			ids = append(ids, n.UserID)
		}
	}
	return ids
}

var (
	// ErrNotFound means no pending item has that id: it never existed, was
	// cancelled, or has already fired.
	ErrNotFound = errors.New("schedule: item not found")
	// ErrDuplicate means Add was given an id that is already pending or
	// being fired.
	ErrDuplicate = errors.New("schedule: duplicate item id")
)

// retryDelay is how long a failed fire waits before it is tried again: long
// enough not to hammer a broker that is down, short enough that a blip
// delays a notification by about a second.
const retryDelay = time.Second

// compareItems orders items by ScheduledAt, then CreatedAt, then ID: the
// order List answers in, and the order items due together fire in.
func compareItems(a, b Item) int {
	if c := a.ScheduledAt.Compare(b.ScheduledAt); c != 0 {
		return c
	}
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// FireFunc delivers a due item. An error leaves the item pending; it is
// tried again shortly, so a failed publish never loses it.
type FireFunc func(ctx context.Context, it Item) error

// Scheduler keeps pending items and fires them. Implementations are safe for
// concurrent use and share contract_test.go.
//
// Exactly once: an item is handed to FireFunc once (again only after
// FireFunc failed), and from the moment it is claimed for firing Get,
// List and Cancel no longer see it, so a cancel after the fire answers
// ErrNotFound.
//
// A scheduler shared by instances (Redis) fails with an error wrapping
// store.ErrUnavailable while its store cannot be reached; nothing was
// changed then, and the caller may retry. Run does not fail for that: it
// retries by itself.
type Scheduler interface {
	// Add stores a pending item. An item already due fires as soon as Run
	// gets to it. It returns an error wrapping ErrDuplicate when an item
	// with that ID is pending or being fired, and changes nothing then.
	Add(ctx context.Context, it Item) error
	// Get returns a pending item.
	Get(ctx context.Context, id string) (Item, error)
	// List returns pending items, earliest first; with userID set, only
	// items addressed to that user.
	List(ctx context.Context, userID string) ([]Item, error)
	// Cancel removes a pending item and returns it.
	Cancel(ctx context.Context, id string) (Item, error)
	// Run fires due items until ctx is done, then returns nil. It is called
	// once, by the owner of the scheduler.
	Run(ctx context.Context, fire FireFunc) error
}
