// Package analytics owns what the service knows about its notifications
// after the fact, per notification type and per UTC day: how many were
// sent, how many reached at least one live connection, how many were read,
// and how long reading took. It keeps those counts (in this process, or in
// Redis shared by every instance, for a retention period) and answers
// queries over a range of days.
//
// It does not observe anything itself: the publish path, the bus's
// delivery callback and the inbox's mark-read path report to a Recorder,
// which batches what it is told and hands it to the Store once a second,
// off the request path. It knows nothing of HTTP.
//
// Units. A notification is one copy as the bus publishes it: a send to
// three users is three notifications (each has its own inbox entry, and
// each can be read), a broadcast is one (it has no inbox entry, so it is
// never read). Sent and Delivered are counted once per copy (per sequence
// number), however many instances report it and however often; Read once
// per inbox entry marked read (the inbox says which mark changed it).
package analytics

import (
	"context"
	"errors"
	"time"
)

// Key names a day and a notification type.
type Key struct {
	Day  Day
	Type string
}

// Mark reports one notification copy, by its bus sequence number, with the
// day of its timestamp and its type.
type Mark struct {
	Seq  uint64
	Day  Day
	Type string
}

// Batch is what an instance saw since it last flushed.
type Batch struct {
	// Sent holds one Mark per notification copy published here.
	Sent []Mark
	// Delivered holds one Mark per copy that reached at least one live
	// connection of this instance.
	Delivered []Mark
	// Reads counts notifications marked read, by the day and type of the
	// notification, in buckets of time to read.
	Reads map[Key]Histogram
}

// Counts are one day's figures for one type.
type Counts struct {
	Sent, Delivered, Read int64
	// ReadTimes are the reads by bucket of time to read.
	ReadTimes Histogram
}

// ReadRate is Read / Sent, and false when nothing was sent. It can pass 1
// only when an instance died before it flushed its sent counts.
func (c Counts) ReadRate() (float64, bool) {
	if c.Sent == 0 {
		return 0, false
	}
	return float64(c.Read) / float64(c.Sent), true
}

// MedianTimeToRead estimates the median time from a notification's
// timestamp to its read (within MedianError), and false without reads.
func (c Counts) MedianTimeToRead() (time.Duration, bool) { return c.ReadTimes.median() }

// Add adds o's figures to c.
func (c *Counts) Add(o Counts) {
	c.Sent += o.Sent
	c.Delivered += o.Delivered
	c.Read += o.Read
	if len(o.ReadTimes) > 0 && c.ReadTimes == nil {
		c.ReadTimes = Histogram{}
	}
	c.ReadTimes.add(o.ReadTimes)
}

// Row is the figures of one type on one day.
type Row struct {
	Key
	Counts
}

// OtherType is where a day's counts go for types past Limits.MaxTypes: a
// caller sending a new type with every notification cannot grow a day
// without bound.
const OtherType = "_other"

// Limits bound what a store keeps.
type Limits struct {
	// Retention is how long a day is kept after it ends. Reports about an
	// older day are ignored.
	Retention time.Duration
	// MaxTypes bounds the types of one day; later types count as
	// OtherType.
	MaxTypes int
}

// DefaultLimits are the limits of a store given none.
var DefaultLimits = Limits{Retention: 30 * 24 * time.Hour, MaxTypes: 100}

func (l Limits) orDefault() Limits {
	if l.Retention <= 0 {
		l.Retention = DefaultLimits.Retention
	}
	if l.MaxTypes <= 0 {
		l.MaxTypes = DefaultLimits.MaxTypes
	}
	return l
}

// kept says whether day d is still kept at now: it ended less than
// retention ago.
func (l Limits) kept(d Day, now time.Time) bool {
	return now.Sub((d + 1).Start()) < l.Retention
}

// dedupWindow is how long a store remembers that a sequence number was
// counted. The same copy is reported again by another instance's feed
// reader seconds later, or by a publish retried within the bus's own
// window (minutes): a day covers both with room to spare.
const dedupWindow = 24 * time.Hour

// ErrRange means a query asked for more days than it may.
var ErrRange = errors.New("analytics: range of days too long")

// MaxQueryDays bounds one query: a year of days.
const MaxQueryDays = 366

// Store keeps the counts. Implementations are safe for concurrent use and
// share contract_test.go.
//
// A store shared by instances (Redis) fails with an error wrapping
// store.ErrUnavailable while it cannot be reached. Apply may then have
// applied part of the batch; applying the same batch again is safe for its
// marks (they count once per sequence number) but counts its reads again.
type Store interface {
	// Apply adds a batch. Each Sent and each Delivered mark counts once per
	// sequence number, whoever reports it and however often, within a day
	// of the first report. Marks and reads of a day no longer kept (older
	// than Limits.Retention) are dropped; a type beyond the day's
	// Limits.MaxTypes counts as OtherType.
	Apply(ctx context.Context, b Batch) error
	// Query returns the figures of the days from through to (both
	// included), ordered by day then type, without rows that are all zero;
	// with typ set, only that type's. It returns ErrRange past
	// MaxQueryDays.
	Query(ctx context.Context, from, to Day, typ string) ([]Row, error)
}

func checkRange(from, to Day) error {
	if to < from || int(to-from) >= MaxQueryDays {
		return ErrRange
	}
	return nil
}
