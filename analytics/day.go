package analytics

import (
	"fmt"
	"time"
)

// Day is a calendar day in UTC, counted from 1970-01-01: what analytics are
// kept per. A notification belongs to the day of its timestamp, and so do
// its delivery and its read, whenever they happen: a day's read rate is the
// share of that day's notifications read so far.
type Day int32

const dayLayout = "2006-01-02"

// DayOf is the UTC day of t.
func DayOf(t time.Time) Day {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d-- // floor, for times before 1970
	}
	return Day(d)
}

// ParseDay reads a day written YYYY-MM-DD.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(dayLayout, s)
	if err != nil {
		return 0, fmt.Errorf("analytics: day %q is not YYYY-MM-DD", s)
	}
	return DayOf(t), nil
}

// Start is the first instant of d.
func (d Day) Start() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String writes d as YYYY-MM-DD.
func (d Day) String() string { return d.Start().Format(dayLayout) }
