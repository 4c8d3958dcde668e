// Package inbox owns every user's notification history and its read state:
// appending, listing newest first, marking read, deleting, retention, and the
// ordered lookup that lets a reconnecting client replay what it missed. It
// does not deliver anything; the broker calls it before publishing.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"notification-service/broker"
)

// Entry is a notification as it sits in an inbox.
type Entry struct {
	broker.Notification
	Read   bool       `json:"read"`
	ReadAt *time.Time `json:"read_at,omitempty"`
}

// Query selects one page of an inbox, newest first.
type Query struct {
	// Limit is the page size; callers validate it (1..MaxPageSize).
	Limit int
	// Before continues a listing: only entries with Seq < Before. Zero
	// starts at the newest entry.
	Before uint64
	// UnreadOnly skips entries already read.
	UnreadOnly bool
}

// Page is one page of an inbox listing.
type Page struct {
	Entries []Entry
	// Total and Unread count the whole inbox, not the page.
	Total  int
	Unread int
	// Next is the Before value for the following page; zero when this page
	// reaches the oldest matching entry.
	Next uint64
}

// Limits bound what an inbox keeps; whichever is reached first trims the
// oldest entries.
type Limits struct {
	MaxPerUser int
	MaxAge     time.Duration
}

var (
	// ErrNotFound means the user has no such notification.
	ErrNotFound = errors.New("inbox: notification not found")
	// ErrTrimmed means retention already removed entries a replay would
	// need: the client must refetch rather than resume.
	ErrTrimmed = fmt.Errorf("inbox: entries trimmed by retention: %w", broker.ErrCursorExpired)
)

// Store is a set of per-user inboxes. Implementations are safe for
// concurrent use; the memory and Redis stores share contract_test.go.
//
// A store shared by instances (Redis) fails with an error wrapping
// store.ErrUnavailable while it cannot be reached; nothing was changed then,
// and the caller may retry.
//
// Entries are ordered by Seq, the bus's global sequence number: Append is
// called with increasing Seq values (the bus serialises publishing), and
// every listing and replay follows that order, never wall-clock time.
type Store interface {
	// Append stores each notification in the inbox of its UserID, unread,
	// then trims that inbox to its Limits. Notifications without a UserID
	// are ignored (broadcasts live in the bus's channel history).
	Append(ctx context.Context, ns ...broker.Notification) error
	// List returns one page, newest first, with the inbox's counts. An
	// unknown user has an empty inbox.
	List(ctx context.Context, userID string, q Query) (Page, error)
	// MarkRead marks one notification read at time at and says whether it
	// was unread until now. Marking an entry that is already read changes
	// nothing and returns it as it is, with changed false.
	MarkRead(ctx context.Context, userID, id string, at time.Time) (e Entry, changed bool, err error)
	// MarkAllRead marks every unread entry read and says how many changed.
	MarkAllRead(ctx context.Context, userID string, at time.Time) (int, error)
	// Delete removes one notification; ErrNotFound if it is not there.
	Delete(ctx context.Context, userID, id string) error
	// Unread counts the unread entries.
	Unread(ctx context.Context, userID string) (int, error)
	// Since returns the entries with Seq > after, oldest first, found by
	// position rather than by scanning. If retention has removed any entry
	// with Seq > after it returns ErrTrimmed instead, because a partial
	// replay would be a silent gap.
	Since(ctx context.Context, userID string, after uint64) ([]broker.Notification, error)
}

// The bus appends to inboxes before it delivers and replays from them: every
// Store is the broker.UserLog it needs.
var _ broker.UserLog = Store(nil)
