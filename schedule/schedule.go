// Package schedule owns notifications that wait for a time: keeping them,
// listing and cancelling them, and firing each exactly once when it is due.
// Firing hands the item to a function the caller gives Run; the scheduler
// never publishes or stores notifications itself.
package schedule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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
	// ErrUserLimit means Add would give a user more items than
	// Limits.PerUser; nothing was stored.
	ErrUserLimit = errors.New("schedule: too many pending items for a user")
	// ErrTotalLimit means Add would make the scheduler hold more items than
	// Limits.Total; nothing was stored.
	ErrTotalLimit = errors.New("schedule: too many pending items")
)

// Limits bound what a scheduler holds: the items not yet delivered, those
// pending and those being fired (a failed fire puts its item back, so
// counting it keeps the bound true). Zero means no bound.
type Limits struct {
	// PerUser bounds the items addressed to one user.
	PerUser int
	// Total bounds every item, addressed or broadcast: what bounds
	// broadcasts, which have no user, and the store as a whole, since the
	// number of users is not bounded.
	Total int
}

// LimitError is Add's refusal over one of Limits: it wraps ErrUserLimit,
// naming the first user at the bound, or ErrTotalLimit (UserID empty).
type LimitError struct {
	UserID string
	Limit  int
}

func (e *LimitError) Error() string {
	if e.UserID == "" {
		return fmt.Sprintf("%v (%d)", ErrTotalLimit, e.Limit)
	}
	return fmt.Sprintf("%v: %s has %d", ErrUserLimit, e.UserID, e.Limit)
}

func (e *LimitError) Unwrap() error {
	if e.UserID == "" {
		return ErrTotalLimit
	}
	return ErrUserLimit
}

// Cursor is a place in the listing order: the millisecond of an item's
// ScheduledAt, then its ID. The zero Cursor is the start.
type Cursor struct {
	At int64 // ScheduledAt, Unix milliseconds
	ID string
}

// IsZero reports whether c is the start of the listing.
func (c Cursor) IsZero() bool { return c == Cursor{} }

// cursorOf is the place of it in the listing order.
func cursorOf(it Item) Cursor { return Cursor{At: it.ScheduledAt.UnixMilli(), ID: it.ID} }

// compareCursors orders places as List does.
func compareCursors(a, b Cursor) int {
	if c := cmp.Compare(a.At, b.At); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// Query selects one page of pending items.
type Query struct {
	// UserID keeps only the items addressed to that user; empty keeps
	// every item, broadcasts included.
	UserID string
	// Limit is the page size, at least 1; callers bound it.
	Limit int
	// After continues a listing: only items placed after it. The zero
	// Cursor starts at the earliest item.
	After Cursor
}

// Page is one page of a listing.
type Page struct {
	Items []Item
	// Total counts the pending items matching the query's UserID, on every
	// page: not the page, and not the items being fired.
	Total int
	// Next is the After of the following page; zero when this page holds
	// the last matching item.
	Next Cursor
}

// retryDelay is how long a failed fire waits before it is tried again: long
// enough not to hammer a broker that is down, short enough that a blip
// delays a notification by about a second.
const retryDelay = time.Second

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
	// with that ID is pending or being fired; else a *LimitError (wrapping
	// ErrTotalLimit or ErrUserLimit) when storing it would exceed the
	// scheduler's Limits, for any one of its users (all or nothing). Either
	// way it changes nothing. The check and the store are one atomic step:
	// concurrent Adds never take a user past its bound together.
	Add(ctx context.Context, it Item) error
	// Get returns a pending item.
	Get(ctx context.Context, id string) (Item, error)
	// List returns one page of pending items, ordered by the millisecond
	// of ScheduledAt, then ID. A listing continued with Next never repeats
	// an item and never skips one pending throughout; an item added
	// meanwhile appears only if it sorts after the page already read, and
	// one fired or cancelled meanwhile no longer appears. A retried item
	// keeps its place (its ScheduledAt does not change).
	List(ctx context.Context, q Query) (Page, error)
	// Cancel removes a pending item and returns it.
	Cancel(ctx context.Context, id string) (Item, error)
	// Run fires due items until ctx is done, then returns nil. It is called
	// once, by the owner of the scheduler.
	Run(ctx context.Context, fire FireFunc) error
}
