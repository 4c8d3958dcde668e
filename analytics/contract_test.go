package analytics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
)

// testStore checks the behaviour every Store shares. newStore returns an
// empty store with limits; two Recorders on one store are two instances.
func testStore(t *testing.T, newStore func(t *testing.T, limits Limits) Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	today := DayOf(now)
	// A time on day d: noon, or the day's first second when d is today
	// (noon may be ahead of now).
	at := func(d Day) time.Time {
		if d == today {
			return d.Start()
		}
		return d.Start().Add(12 * time.Hour)
	}
	n := func(seq uint64, typ string, d Day) broker.Notification {
		return broker.Notification{ID: "n", Seq: seq, Type: typ, Timestamp: at(d)}
	}
	query := func(t *testing.T, s Store, from, to Day, typ string) []Row {
		t.Helper()
		rows, err := s.Query(ctx, from, to, typ)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		return rows
	}
	flush := func(t *testing.T, rs ...*Recorder) {
		t.Helper()
		for _, r := range rs {
			if err := r.Flush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
		}
	}

	t.Run("a scripted scenario over two instances, counted exactly", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{Retention: 30 * 24 * time.Hour})
		a, b := NewRecorder(s, RecorderOptions{}), NewRecorder(s, RecorderOptions{})
		yesterday, old := today-1, today-40

		// Instance a publishes five tarea (one to three users: three
		// copies) and one old one; b publishes two info and a tarea
		// yesterday. A retried publish reports copy 3 again.
		a.Published([]broker.Notification{n(1, "tarea", today), n(2, "tarea", today)})
		a.Published([]broker.Notification{n(3, "tarea", today), n(4, "tarea", today), n(5, "tarea", today)})
		a.Published([]broker.Notification{n(9, "tarea", old)})
		b.Published([]broker.Notification{n(6, "info", today), n(7, "info", today), n(8, "tarea", yesterday)})
		flush(t, a)
		a.Published([]broker.Notification{n(3, "tarea", today)})

		// Both instances reach copies 2 and 3; nobody reaches 5 or 7;
		// a reports a copy that reached nobody.
		for _, seq := range []uint64{1, 2, 3} {
			a.Delivered(n(seq, "tarea", today), 1)
		}
		a.Delivered(n(5, "tarea", today), 0)
		a.Delivered(n(8, "tarea", yesterday), 3)
		a.Delivered(n(9, "tarea", old), 1)
		for _, seq := range []uint64{2, 3, 4} {
			b.Delivered(n(seq, "tarea", today), 2)
		}
		b.Delivered(n(6, "info", today), 1)

		// Three tarea read after 10 s, 20 s and 40 s, one info within a
		// second, one old read (dropped).
		for _, after := range []time.Duration{10 * time.Second, 40 * time.Second} {
			a.Read("tarea", at(today), at(today).Add(after))
		}
		b.Read("tarea", at(today), at(today).Add(20*time.Second))
		b.Read("info", at(today), at(today).Add(300*time.Millisecond))
		b.Read("tarea", at(old), now)
		flush(t, a, b)

		rows := query(t, s, today-45, today, "")
		is.Equal(len(rows), 3)
		is.Equal(rows[0].Key, Key{yesterday, "tarea"})
		is.Equal(rows[0].Sent, int64(1))
		is.Equal(rows[0].Delivered, int64(1))
		is.Equal(rows[0].Read, int64(0))
		_, ok := rows[0].MedianTimeToRead()
		is.True(!ok) // no read, no median

		is.Equal(rows[1].Key, Key{today, "info"})
		is.Equal([]int64{rows[1].Sent, rows[1].Delivered, rows[1].Read}, []int64{2, 1, 1})
		rate, ok := rows[1].ReadRate()
		is.True(ok)
		is.Equal(rate, 0.5)
		median, _ := rows[1].MedianTimeToRead()
		is.Equal(median, 500*time.Millisecond) // under a second: reported as half of one

		is.Equal(rows[2].Key, Key{today, "tarea"})
		is.Equal([]int64{rows[2].Sent, rows[2].Delivered, rows[2].Read}, []int64{5, 4, 3}) // copy 3 sent once; 1-4 delivered once each
		rate, _ = rows[2].ReadRate()
		is.Equal(rate, 0.6)
		median, _ = rows[2].MedianTimeToRead()
		is.Equal(median, bucketMiddle(bucketOf(20*time.Second)))
		is.True(within(median, 20*time.Second, MedianError))

		// A type filter and a narrower range.
		rows = query(t, s, today, today, "info")
		is.Equal(len(rows), 1)
		is.Equal(rows[0].Key, Key{today, "info"})
		is.Equal(len(query(t, s, yesterday, yesterday, "")), 1)
		is.Equal(len(query(t, s, today-45, today-35, "")), 0) // the old day was never kept
		is.Equal(len(query(t, s, today, today, "nope")), 0)

		// Reported again later, by either instance: still once.
		b.Published([]broker.Notification{n(1, "tarea", today)})
		b.Delivered(n(1, "tarea", today), 1)
		flush(t, b)
		rows = query(t, s, today, today, "tarea")
		is.Equal([]int64{rows[0].Sent, rows[0].Delivered, rows[0].Read}, []int64{5, 4, 3})
	})

	t.Run("sequence numbers in different blocks are told apart", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		r := NewRecorder(s, RecorderOptions{})
		for _, seq := range []uint64{dedupBlockBits - 1, dedupBlockBits, 2*dedupBlockBits + 1, 1 << 40} {
			r.Published([]broker.Notification{n(seq, "t", today)})
			r.Delivered(n(seq, "t", today), 1)
		}
		flush(t, r)
		rows := query(t, s, today, today, "")
		is.Equal(len(rows), 1)
		is.Equal([]int64{rows[0].Sent, rows[0].Delivered}, []int64{4, 4})
	})

	t.Run("types past the day's limit count as the other type", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{MaxTypes: 2})
		r := NewRecorder(s, RecorderOptions{})
		r.Published([]broker.Notification{n(1, "a", today), n(2, "b", today)})
		flush(t, r)
		r.Published([]broker.Notification{n(3, "c", today), n(4, "a", today), n(5, "d", today)})
		r.Read("c", at(today), now)
		r.Published([]broker.Notification{n(6, "x", today-1)}) // another day has room
		flush(t, r)
		rows := query(t, s, today-1, today, "")
		got := map[Key]int64{}
		for _, row := range rows {
			got[row.Key] = row.Sent
		}
		is.Equal(got, map[Key]int64{{today - 1, "x"}: 1, {today, "a"}: 2, {today, "b"}: 1, {today, OtherType}: 2})
		rows = query(t, s, today, today, OtherType)
		is.Equal(rows[0].Read, int64(1))
	})

	t.Run("a range past MaxQueryDays or backwards is refused", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		_, err := s.Query(ctx, today-MaxQueryDays, today, "")
		is.True(errors.Is(err, ErrRange))
		_, err = s.Query(ctx, today, today-1, "")
		is.True(errors.Is(err, ErrRange))
		rows, err := s.Query(ctx, today-MaxQueryDays+1, today, "")
		is.NoErr(err)
		is.Equal(len(rows), 0)
	})

	t.Run("a large flush is applied whole", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		r := NewRecorder(s, RecorderOptions{})
		const copies = 2*scriptItems + 7
		for seq := uint64(1); seq <= copies; seq++ {
			r.Published([]broker.Notification{n(seq, "bulk", today)})
			r.Delivered(n(seq, "bulk", today), 1)
			r.Read("bulk", at(today), at(today).Add(time.Duration(seq)*time.Second))
		}
		flush(t, r)
		rows := query(t, s, today, today, "bulk")
		is.Equal([]int64{rows[0].Sent, rows[0].Delivered, rows[0].Read}, []int64{copies, copies, copies})
		median, _ := rows[0].MedianTimeToRead()
		is.True(within(median, (copies+1)/2*time.Second, MedianError))
	})
}

func within(got, want time.Duration, rel float64) bool {
	d := float64(got - want)
	return d <= rel*float64(want)+1 && -d <= rel*float64(want)+1
}
