package inbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
)

// This file is longer than the others on purpose: it is the Store
// contract, one subtest per clause of the Store documentation, which both
// implementations run. Split, the contract would no longer read as one.

// testStore checks the behaviour every Store shares. newStore returns an
// empty store keeping what limits allow, on the wall clock: MaxAge is only
// exercised here with margins of hours, and each implementation checks the
// edges of age retention with its own clock.
func testStore(t *testing.T, newStore func(t *testing.T, limits Limits) Store) {
	t.Helper()

	t.Run("append then list newest first", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		first := note("alice", 1)
		first.Title = "Welcome"
		first.Message = "Hello, Alice"
		first.Channels = []string{"news", "billing"}
		first.Data = json.RawMessage(`{"order":42}`)
		appendAll(t, s, first, note("bob", 2), note("alice", 3))
		appendAll(t, s, note("alice", 4))

		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{4, 3, 1})
		is.Equal(page.Total, 3)
		is.Equal(page.Unread, 3)
		is.Equal(page.Next, uint64(0))

		got := page.Entries[2]
		is.Equal(got.ID, first.ID)
		is.Equal(got.Type, first.Type)
		is.Equal(got.Title, "Welcome")
		is.Equal(got.Message, "Hello, Alice")
		is.Equal(got.UserID, "alice")
		is.Equal(got.Channels, []string{"news", "billing"})
		is.Equal(string(got.Data), `{"order":42}`)
		is.True(got.Timestamp.Equal(first.Timestamp))
		is.Equal(got.Seq, uint64(1))
		is.True(!got.Read)
		is.Equal(got.ReadAt, nil)
	})

	t.Run("unknown user has an empty inbox", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		appendAll(t, s, note("alice", 1))

		page, err := s.List(t.Context(), "nobody", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(len(page.Entries), 0)
		is.Equal(page.Total, 0)
		is.Equal(page.Unread, 0)
		is.Equal(page.Next, uint64(0))
		unread, err := s.Unread(t.Context(), "nobody")
		is.NoErr(err)
		is.Equal(unread, 0)
		changed, err := s.MarkAllRead(t.Context(), "nobody", at(0))
		is.NoErr(err)
		is.Equal(changed, 0)
		missed, err := s.Since(t.Context(), "nobody", 0)
		is.NoErr(err)
		is.Equal(len(missed), 0)
	})

	t.Run("broadcasts are not stored", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		broadcast := note("", 1)
		broadcast.Channels = []string{"news"}
		appendAll(t, s, broadcast)
		appendAll(t, s, broadcast, note("alice", 2))

		page, err := s.List(t.Context(), "", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(page.Total, 0)
		missed, err := s.Since(t.Context(), "", 0)
		is.NoErr(err)
		is.Equal(len(missed), 0)
		page, err = s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{2})
	})

	t.Run("pages follow Next without gaps or repeats", func(t *testing.T) {
		tests := []struct {
			name       string
			count      int
			limit      int
			unreadOnly bool
			readEvery  int // every n-th entry is read first; 0 for none
			pages      int
		}{
			{name: "several pages", count: 25, limit: 10, pages: 3},
			{name: "last page exactly full", count: 20, limit: 10, pages: 2},
			{name: "one short page", count: 5, limit: 10, pages: 1},
			{name: "one entry per page", count: 3, limit: 1, pages: 3},
			{name: "read entries included", count: 12, limit: 5, readEvery: 3, pages: 3},
			{name: "unread only", count: 21, limit: 4, unreadOnly: true, readEvery: 3, pages: 4},
			{name: "unread only ends on a page", count: 12, limit: 4, unreadOnly: true, readEvery: 3, pages: 2},
			{name: "unread only, all read", count: 6, limit: 4, unreadOnly: true, readEvery: 1, pages: 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				is := is.New(t)
				s := newStore(t, Limits{})
				// Alice's sequence numbers have gaps where Bob's
				// notifications went, so a store that pages by
				// position rather than by Seq shows up.
				var want []uint64
				unread := 0
				for i := range tt.count {
					seq := uint64(3*i + 1)
					appendAll(t, s, note("alice", seq), note("bob", seq+1))
					read := tt.readEvery > 0 && i%tt.readEvery == 0
					if read {
						_, _, err := s.MarkRead(t.Context(), "alice", idOf(seq), at(0))
						is.NoErr(err)
					} else {
						unread++
					}
					if !read || !tt.unreadOnly {
						want = append([]uint64{seq}, want...)
					}
				}

				got := []uint64{}
				q := Query{Limit: tt.limit, UnreadOnly: tt.unreadOnly}
				pages := 0
				for {
					pages++
					if pages > tt.count+1 {
						t.Fatalf("more than %d pages: Next never reached zero", tt.count+1)
					}
					page, err := s.List(t.Context(), "alice", q)
					is.NoErr(err)
					is.Equal(page.Total, tt.count) // counts cover the whole inbox
					is.Equal(page.Unread, unread)
					is.True(len(page.Entries) <= tt.limit)
					for _, e := range page.Entries {
						is.True(!tt.unreadOnly || !e.Read)
					}
					got = append(got, entrySeqs(page.Entries)...)
					if page.Next == 0 {
						break
					}
					is.Equal(len(page.Entries), tt.limit)                      // a page with more to come is full
					is.Equal(page.Next, page.Entries[len(page.Entries)-1].Seq) // Next continues after the last entry
					q.Before = page.Next
				}
				is.Equal(got, append([]uint64{}, want...))
				is.Equal(pages, tt.pages)
			})
		}
	})

	t.Run("before selects by seq", func(t *testing.T) {
		s := newStore(t, Limits{})
		appendAll(t, s, note("alice", 10), note("bob", 15), note("alice", 20), note("alice", 30))
		tests := []struct {
			before uint64
			want   []uint64
		}{
			{before: 0, want: []uint64{30, 20, 10}},
			{before: 100, want: []uint64{30, 20, 10}},
			{before: 30, want: []uint64{20, 10}},
			{before: 25, want: []uint64{20, 10}},
			{before: 20, want: []uint64{10}},
			{before: 15, want: []uint64{10}},
			{before: 10, want: []uint64{}},
			{before: 1, want: []uint64{}},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprint(tt.before), func(t *testing.T) {
				is := is.New(t)
				page, err := s.List(t.Context(), "alice", Query{Limit: 10, Before: tt.before})
				is.NoErr(err)
				is.Equal(entrySeqs(page.Entries), tt.want)
				is.Equal(page.Next, uint64(0))
				is.Equal(page.Total, 3)
			})
		}
	})

	t.Run("mark read", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		appendAll(t, s, note("alice", 1), note("alice", 2))

		e, changed, err := s.MarkRead(t.Context(), "alice", idOf(1), at(1))
		is.NoErr(err)
		is.True(changed) // newly read
		is.Equal(e.ID, idOf(1))
		is.Equal(e.Seq, uint64(1))
		is.True(e.Read)
		is.True(e.ReadAt != nil && e.ReadAt.Equal(at(1)))
		unread, err := s.Unread(t.Context(), "alice")
		is.NoErr(err)
		is.Equal(unread, 1)

		// Marking again changes nothing, not even the time.
		e, changed, err = s.MarkRead(t.Context(), "alice", idOf(1), at(2))
		is.NoErr(err)
		is.True(!changed) // already read
		is.True(e.Read)
		is.True(e.ReadAt != nil && e.ReadAt.Equal(at(1)))
		unread, err = s.Unread(t.Context(), "alice")
		is.NoErr(err)
		is.Equal(unread, 1)

		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(page.Unread, 1)
		is.True(!page.Entries[0].Read)
		is.Equal(page.Entries[0].ReadAt, nil)
		is.True(page.Entries[1].Read)
		is.True(page.Entries[1].ReadAt != nil && page.Entries[1].ReadAt.Equal(at(1)))
	})

	t.Run("missing notifications are not found", func(t *testing.T) {
		s := newStore(t, Limits{})
		appendAll(t, s, note("alice", 1), note("bob", 2))
		tests := []struct {
			name, user, id string
		}{
			{name: "unknown user", user: "nobody", id: idOf(1)},
			{name: "unknown id", user: "alice", id: "no-such-id"},
			{name: "another user's notification", user: "bob", id: idOf(1)},
			{name: "empty id", user: "alice", id: ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				is := is.New(t)
				_, _, err := s.MarkRead(t.Context(), tt.user, tt.id, at(0))
				is.True(errors.Is(err, ErrNotFound))
				err = s.Delete(t.Context(), tt.user, tt.id)
				is.True(errors.Is(err, ErrNotFound))
			})
		}
		is := is.New(t)
		// The failed calls above touched nothing.
		for _, user := range []string{"alice", "bob"} {
			page, err := s.List(t.Context(), user, Query{Limit: 10})
			is.NoErr(err)
			is.Equal(page.Total, 1)
			is.Equal(page.Unread, 1)
		}
	})

	t.Run("mark all read", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		for seq := range uint64(5) {
			appendAll(t, s, note("alice", seq+1))
		}
		appendAll(t, s, note("bob", 6))
		_, _, err := s.MarkRead(t.Context(), "alice", idOf(2), at(1))
		is.NoErr(err)
		_, _, err = s.MarkRead(t.Context(), "alice", idOf(4), at(1))
		is.NoErr(err)

		changed, err := s.MarkAllRead(t.Context(), "alice", at(2))
		is.NoErr(err)
		is.Equal(changed, 3)
		changed, err = s.MarkAllRead(t.Context(), "alice", at(3))
		is.NoErr(err)
		is.Equal(changed, 0)

		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(page.Unread, 0)
		is.Equal(page.Total, 5)
		for _, e := range page.Entries {
			want := at(2)
			if e.Seq == 2 || e.Seq == 4 {
				want = at(1) // already read: keeps its time
			}
			is.True(e.Read)
			is.True(e.ReadAt != nil && e.ReadAt.Equal(want))
		}
		page, err = s.List(t.Context(), "alice", Query{Limit: 10, UnreadOnly: true})
		is.NoErr(err)
		is.Equal(len(page.Entries), 0)
		is.Equal(page.Next, uint64(0))

		unread, err := s.Unread(t.Context(), "bob")
		is.NoErr(err)
		is.Equal(unread, 1) // Bob's inbox is his own
	})

	t.Run("delete", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		appendAll(t, s, note("alice", 1), note("alice", 2), note("alice", 3), note("alice", 4))
		_, _, err := s.MarkRead(t.Context(), "alice", idOf(3), at(0))
		is.NoErr(err)

		is.NoErr(s.Delete(t.Context(), "alice", idOf(2))) // unread
		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{4, 3, 1})
		is.Equal(page.Total, 3)
		is.Equal(page.Unread, 2)

		is.NoErr(s.Delete(t.Context(), "alice", idOf(3))) // read
		page, err = s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{4, 1})
		is.Equal(page.Unread, 2)
		unread, err := s.Unread(t.Context(), "alice")
		is.NoErr(err)
		is.Equal(unread, 2)

		err = s.Delete(t.Context(), "alice", idOf(2))
		is.True(errors.Is(err, ErrNotFound)) // deleted once is gone
		_, _, err = s.MarkRead(t.Context(), "alice", idOf(2), at(0))
		is.True(errors.Is(err, ErrNotFound))

		// Deleting is the user's choice, not retention: a replay from
		// before it is still complete.
		missed, err := s.Since(t.Context(), "alice", 0)
		is.NoErr(err)
		is.Equal(notificationSeqs(missed), []uint64{1, 4})

		// Emptying the inbox leaves an inbox that still works.
		is.NoErr(s.Delete(t.Context(), "alice", idOf(1)))
		is.NoErr(s.Delete(t.Context(), "alice", idOf(4)))
		page, err = s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(page.Total, 0)
		is.Equal(page.Unread, 0)
		missed, err = s.Since(t.Context(), "alice", 0)
		is.NoErr(err)
		is.Equal(len(missed), 0)
		appendAll(t, s, note("alice", 5))
		missed, err = s.Since(t.Context(), "alice", 0)
		is.NoErr(err)
		is.Equal(notificationSeqs(missed), []uint64{5})
	})

	t.Run("since replays by seq, oldest first", func(t *testing.T) {
		s := newStore(t, Limits{})
		appendAll(t, s, note("alice", 10), note("bob", 15))
		appendAll(t, s, note("alice", 20), note("bob", 25), note("", 27), note("alice", 30))
		tests := []struct {
			after uint64
			want  []uint64
		}{
			{after: 0, want: []uint64{10, 20, 30}},
			{after: 5, want: []uint64{10, 20, 30}},
			{after: 10, want: []uint64{20, 30}},
			{after: 15, want: []uint64{20, 30}},
			{after: 3, want: []uint64{10, 20, 30}}, // positions would say {30}
			{after: 29, want: []uint64{30}},
			{after: 30, want: []uint64{}},
			{after: 1000, want: []uint64{}},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprint(tt.after), func(t *testing.T) {
				is := is.New(t)
				missed, err := s.Since(t.Context(), "alice", tt.after)
				is.NoErr(err)
				is.Equal(notificationSeqs(missed), tt.want)
				for _, n := range missed {
					is.Equal(n.ID, idOf(n.Seq))
					is.Equal(n.UserID, "alice")
				}
			})
		}
	})

	t.Run("max per user trims the oldest", func(t *testing.T) {
		s := newStore(t, Limits{MaxPerUser: 3})
		appendAll(t, s, note("alice", 1), note("alice", 2), note("bob", 3))
		appendAll(t, s, note("alice", 4), note("bob", 5))
		appendAll(t, s, note("alice", 6))
		appendAll(t, s, note("alice", 7))

		is := is.New(t)
		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{7, 6, 4})
		is.Equal(page.Total, 3)
		is.Equal(page.Unread, 3) // trimmed unread entries no longer count
		unread, err := s.Unread(t.Context(), "alice")
		is.NoErr(err)
		is.Equal(unread, 3)
		_, _, err = s.MarkRead(t.Context(), "alice", idOf(2), at(0))
		is.True(errors.Is(err, ErrNotFound))

		tests := []struct {
			after   uint64
			want    []uint64
			trimmed bool
		}{
			{after: 0, trimmed: true},
			{after: 1, trimmed: true}, // seq 2 was lost after it
			{after: 2, want: []uint64{4, 6, 7}},
			{after: 3, want: []uint64{4, 6, 7}},
			{after: 4, want: []uint64{6, 7}},
			{after: 7, want: []uint64{}},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprint(tt.after), func(t *testing.T) {
				is := is.New(t)
				missed, err := s.Since(t.Context(), "alice", tt.after)
				if tt.trimmed {
					is.True(errors.Is(err, ErrTrimmed))
					is.True(errors.Is(err, broker.ErrCursorExpired)) // the bus answers with a reset
					is.Equal(len(missed), 0)
					return
				}
				is.NoErr(err)
				is.Equal(notificationSeqs(missed), tt.want)
			})
		}

		// Bob is under the limit: nothing of his was trimmed.
		missed, err := s.Since(t.Context(), "bob", 0)
		is.NoErr(err)
		is.Equal(notificationSeqs(missed), []uint64{3, 5})
	})

	t.Run("max per user within one append", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{MaxPerUser: 2})
		appendAll(t, s, note("alice", 1), note("alice", 2), note("alice", 3), note("alice", 4))
		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{4, 3})
		is.Equal(page.Unread, 2)
		_, err = s.Since(t.Context(), "alice", 1)
		is.True(errors.Is(err, ErrTrimmed))
		missed, err := s.Since(t.Context(), "alice", 2)
		is.NoErr(err)
		is.Equal(notificationSeqs(missed), []uint64{3, 4})
	})

	t.Run("max age trims old entries", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{MaxAge: 24 * time.Hour})
		old := note("alice", 1)
		old.Timestamp = broker.Now().Add(-48 * time.Hour)
		appendAll(t, s, old, note("alice", 2))
		appendAll(t, s, note("alice", 3))

		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{3, 2})
		is.Equal(page.Unread, 2)
		_, err = s.Since(t.Context(), "alice", 0)
		is.True(errors.Is(err, ErrTrimmed))
		missed, err := s.Since(t.Context(), "alice", 1)
		is.NoErr(err)
		is.Equal(notificationSeqs(missed), []uint64{2, 3})
	})

	t.Run("zero limits keep everything", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		const count = 500
		ns := make([]broker.Notification, count)
		for i := range ns {
			ns[i] = note("alice", uint64(i+1))
		}
		ns[0].Timestamp = broker.Now().Add(-10 * 365 * 24 * time.Hour)
		appendAll(t, s, ns...)
		page, err := s.List(t.Context(), "alice", Query{Limit: 1})
		is.NoErr(err)
		is.Equal(page.Total, count)
		missed, err := s.Since(t.Context(), "alice", 0)
		is.NoErr(err)
		is.Equal(len(missed), count)
	})

	t.Run("returned entries are copies", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{})
		appendAll(t, s, note("alice", 1))
		e, _, err := s.MarkRead(t.Context(), "alice", idOf(1), at(1))
		is.NoErr(err)
		*e.ReadAt = at(9)
		e.Title = "changed"

		page, err := s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		*page.Entries[0].ReadAt = at(9)
		page.Entries[0].Read = false

		page, err = s.List(t.Context(), "alice", Query{Limit: 10})
		is.NoErr(err)
		is.True(page.Entries[0].Read)
		is.True(page.Entries[0].ReadAt.Equal(at(1)))
		is.Equal(page.Entries[0].Title, note("alice", 1).Title)
		e, _, err = s.MarkRead(t.Context(), "alice", idOf(1), at(2))
		is.NoErr(err)
		is.True(e.ReadAt.Equal(at(1)))
	})

	t.Run("inboxes are isolated", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, Limits{MaxPerUser: 2})
		appendAll(t, s, note("alice", 1), note("bob", 2), note("alice", 3), note("alice", 4), note("bob", 5))

		changed, err := s.MarkAllRead(t.Context(), "alice", at(0))
		is.NoErr(err)
		is.Equal(changed, 2)
		err = s.Delete(t.Context(), "alice", idOf(2))
		is.True(errors.Is(err, ErrNotFound)) // Bob's notification

		page, err := s.List(t.Context(), "bob", Query{Limit: 10})
		is.NoErr(err)
		is.Equal(entrySeqs(page.Entries), []uint64{5, 2})
		is.Equal(page.Unread, 2)
		missed, err := s.Since(t.Context(), "bob", 0) // Alice's trimming is not Bob's
		is.NoErr(err)
		is.Equal(notificationSeqs(missed), []uint64{2, 5})
		_, err = s.Since(t.Context(), "alice", 0)
		is.True(errors.Is(err, ErrTrimmed))
	})

	t.Run("concurrent use", func(t *testing.T) {
		is := is.New(t)
		const (
			users    = 4
			perUser  = 60
			maxKept  = 40
			readers  = 2 // per user
			rounds   = 50
			pageSize = 7
		)
		s := newStore(t, Limits{MaxPerUser: maxKept})
		user := func(u int) string { return fmt.Sprintf("user%d", u) }

		// The bus serialises Append, so appenders share a lock and a
		// sequence as it does; everything else runs alongside them.
		var (
			publish sync.Mutex
			seq     uint64
			wg      sync.WaitGroup
		)
		for u := range users {
			wg.Go(func() {
				for range perUser {
					publish.Lock()
					seq++
					err := s.Append(t.Context(), note(user(u), seq), note("", seq+1))
					seq++
					publish.Unlock()
					if err != nil {
						t.Errorf("append: %v", err)
						return
					}
				}
			})
			for r := range readers {
				wg.Go(func() {
					for i := range rounds {
						page, err := s.List(t.Context(), user(u), Query{Limit: pageSize, UnreadOnly: r == 0})
						if err != nil {
							t.Errorf("list: %v", err)
							return
						}
						for _, e := range page.Entries {
							// The entry may have been trimmed since
							// the page was read.
							if _, _, err := s.MarkRead(t.Context(), user(u), e.ID, at(i)); err != nil && !errors.Is(err, ErrNotFound) {
								t.Errorf("mark read: %v", err)
							}
						}
						if i%10 == 0 && len(page.Entries) > 0 {
							err := s.Delete(t.Context(), user(u), page.Entries[0].ID)
							if err != nil && !errors.Is(err, ErrNotFound) {
								t.Errorf("delete: %v", err)
							}
						}
						if i%15 == 0 {
							if _, err := s.MarkAllRead(t.Context(), user(u), at(i)); err != nil {
								t.Errorf("mark all read: %v", err)
							}
						}
						if _, err := s.Unread(t.Context(), user(u)); err != nil {
							t.Errorf("unread: %v", err)
						}
						if _, err := s.Since(t.Context(), user(u), page.Next); err != nil && !errors.Is(err, ErrTrimmed) {
							t.Errorf("since: %v", err)
						}
					}
				})
			}
		}
		wg.Wait()

		// Whatever interleaving happened, the counts agree with the
		// entries behind them.
		for u := range users {
			page, err := s.List(t.Context(), user(u), Query{Limit: perUser})
			is.NoErr(err)
			is.Equal(page.Total, len(page.Entries))
			is.True(page.Total <= maxKept)
			unread := 0
			for _, e := range page.Entries {
				is.Equal(e.UserID, user(u))
				if !e.Read {
					unread++
				}
			}
			is.Equal(page.Unread, unread)
			n, err := s.Unread(t.Context(), user(u))
			is.NoErr(err)
			is.Equal(n, unread)
			changed, err := s.MarkAllRead(t.Context(), user(u), at(0))
			is.NoErr(err)
			is.Equal(changed, unread)
		}
	})
}

// note is a notification for user with sequence number seq. Its timestamp
// is now at millisecond precision, as broker.Now gives it, so it survives a
// round trip through any store.
func note(user string, seq uint64) broker.Notification {
	return broker.Notification{
		ID:        idOf(seq),
		Type:      "test",
		Title:     fmt.Sprintf("Notification %d", seq),
		UserID:    user,
		Timestamp: broker.Now(),
		Seq:       seq,
	}
}

// idOf is the id note gives the notification with sequence number seq.
func idOf(seq uint64) string { return fmt.Sprintf("n%d", seq) }

// at is a fixed, distinct read time for each i.
func at(i int) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
}

func appendAll(t *testing.T, s Store, ns ...broker.Notification) {
	t.Helper()
	if err := s.Append(t.Context(), ns...); err != nil {
		t.Fatalf("append: %v", err)
	}
}

func entrySeqs(es []Entry) []uint64 {
	seqs := make([]uint64, 0, len(es))
	for _, e := range es {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func notificationSeqs(ns []broker.Notification) []uint64 {
	seqs := make([]uint64, 0, len(ns))
	for _, n := range ns {
		seqs = append(seqs, n.Seq)
	}
	return seqs
}
