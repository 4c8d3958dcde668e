package presence

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

// testStore checks the behaviour every Store shares. newStore returns an
// empty store whose channels hold at most maxMembers members (0: the
// default).
func testStore(t *testing.T, newStore func(t *testing.T, maxMembers int) Store) {
	t.Helper()

	t.Run("one user with two connections is one member", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		ann := Member{UserID: "ann", Info: json.RawMessage(`{"name":"Ann"}`)}

		ms, added := join(t, s, "presence-room", "1.1", ann)
		is.True(added) // the first connection adds the user
		is.Equal(ms, []Member{ann})
		ms, added = join(t, s, "presence-room", "2.2", ann)
		is.True(!added) // the second tab is the same member
		is.Equal(ms, []Member{ann})

		user, removed := leave(t, s, "presence-room", "1.1")
		is.Equal(user, "ann")
		is.True(!removed) // one connection is still in
		is.Equal(members(t, s, "presence-room"), []Member{ann})
		user, removed = leave(t, s, "presence-room", "2.2")
		is.Equal(user, "ann")
		is.True(removed) // the last connection out removes the user
		is.Equal(members(t, s, "presence-room"), []Member{})
	})

	t.Run("members are sorted by user id with their latest info", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		join(t, s, "presence-room", "1.1", Member{UserID: "carol", Info: json.RawMessage(`{"v":1}`)})
		join(t, s, "presence-room", "2.1", Member{UserID: "10"}) // no user_info
		join(t, s, "presence-room", "3.1", Member{UserID: "9", Info: json.RawMessage(`"nine"`)})
		ms, _ := join(t, s, "presence-room", "1.2", Member{UserID: "carol", Info: json.RawMessage(`{"v":2,"list":[]}`)})
		want := []Member{
			{UserID: "10"},
			{UserID: "9", Info: json.RawMessage(`"nine"`)},
			{UserID: "carol", Info: json.RawMessage(`{"v":2,"list":[]}`)}, // the latest join's, byte for byte
		}
		is.Equal(ms, want)
		is.Equal(members(t, s, "presence-room"), want)
		is.Equal(members(t, s, "presence-room")[0].Info, json.RawMessage(nil)) // absent stays absent

		// Re-joining an existing connection also updates the info.
		ms, added := join(t, s, "presence-room", "2.1", Member{UserID: "10", Info: json.RawMessage(`{}`)})
		is.True(!added)
		is.Equal(string(ms[0].Info), `{}`)
	})

	t.Run("the info is the caller's copy", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		buf := []byte(`{"name":"Ann"}`)
		join(t, s, "presence-room", "1.1", Member{UserID: "ann", Info: buf})
		copy(buf, `{"name":"Bob"}`) // the transport reuses its read buffer
		is.Equal(string(members(t, s, "presence-room")[0].Info), `{"name":"Ann"}`)
	})

	t.Run("join and leave are idempotent", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		ann := Member{UserID: "ann"}
		_, added := join(t, s, "presence-room", "1.1", ann)
		is.True(added)
		_, added = join(t, s, "presence-room", "1.1", ann)
		is.True(!added)
		join(t, s, "presence-room", "2.2", Member{UserID: "bob"})

		// Joined twice, the connection still leaves in one Leave.
		user, removed := leave(t, s, "presence-room", "1.1")
		is.Equal(user, "ann")
		is.True(removed)
		user, removed = leave(t, s, "presence-room", "1.1")
		is.Equal(user, "")
		is.True(!removed)
		user, removed = leave(t, s, "presence-room", "9.9") // never joined
		is.Equal(user, "")
		is.True(!removed)
		user, removed = leave(t, s, "presence-nobody", "1.1")
		is.Equal(user, "")
		is.True(!removed)
		is.Equal(members(t, s, "presence-room"), []Member{{UserID: "bob"}})
	})

	t.Run("a connection is one user", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		join(t, s, "presence-room", "1.1", Member{UserID: "ann"})
		_, _, err := s.Join(t.Context(), "presence-room", "1.1", Member{UserID: "bob"})
		is.True(errors.Is(err, ErrConnInUse))
		is.Equal(members(t, s, "presence-room"), []Member{{UserID: "ann"}})
		// The same connection id in another channel is another membership.
		_, added := join(t, s, "presence-other", "1.1", Member{UserID: "bob"})
		is.True(added)
	})

	t.Run("a full channel refuses new members only", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 2)
		join(t, s, "presence-room", "1.1", Member{UserID: "ann"})
		join(t, s, "presence-room", "2.1", Member{UserID: "bob"})

		ms, added, err := s.Join(t.Context(), "presence-room", "3.1", Member{UserID: "carol"})
		is.True(errors.Is(err, ErrFull))
		is.Equal(ms, nil)
		is.True(!added)
		user, removed := leave(t, s, "presence-room", "3.1") // nothing was recorded
		is.Equal(user, "")
		is.True(!removed)
		// A member's second connection is no new member.
		_, added = join(t, s, "presence-room", "1.2", Member{UserID: "ann"})
		is.True(!added)
		// Other channels have their own count.
		_, added = join(t, s, "presence-other", "3.1", Member{UserID: "carol"})
		is.True(added)

		leave(t, s, "presence-room", "2.1")
		_, added = join(t, s, "presence-room", "3.1", Member{UserID: "carol"})
		is.True(added)
		is.Equal(members(t, s, "presence-room"), []Member{{UserID: "ann"}, {UserID: "carol"}})
	})

	t.Run("the default bound is Pusher's 100", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		for i := range DefaultMaxMembers {
			join(t, s, "presence-big", fmt.Sprintf("%d.1", i), Member{UserID: fmt.Sprint("user", i)})
		}
		_, _, err := s.Join(t.Context(), "presence-big", "100.1", Member{UserID: "one-too-many"})
		is.True(errors.Is(err, ErrFull))
		is.Equal(len(members(t, s, "presence-big")), DefaultMaxMembers)
	})

	t.Run("channels are apart, whatever their names", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		// Every character Pusher allows in a name, and names that share
		// beginnings.
		names := []string{"presence-a", "presence-a:b", "presence-a,b;c=d@e.f_g-h:1", "presence-a.b"}
		for i, name := range names {
			_, added := join(t, s, name, "1.1", Member{UserID: fmt.Sprint("user", i)})
			is.True(added)
		}
		for i, name := range names {
			is.Equal(members(t, s, name), []Member{{UserID: fmt.Sprint("user", i)}})
		}
		for i, name := range names {
			user, removed := leave(t, s, name, "1.1")
			is.Equal(user, fmt.Sprint("user", i))
			is.True(removed)
		}
	})

	t.Run("empty names are refused", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		for _, c := range []struct{ channel, conn, user string }{
			{"", "1.1", "ann"}, {"presence-room", "", "ann"}, {"presence-room", "1.1", ""},
		} {
			_, _, err := s.Join(t.Context(), c.channel, c.conn, Member{UserID: c.user})
			is.True(err != nil)
			is.True(!errors.Is(err, ErrFull))
		}
		is.Equal(members(t, s, "presence-room"), []Member{})
	})

	t.Run("concurrent joins and leaves add and remove each user once per stay", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		const workers, users, rounds = 50, 7, 4
		var mu sync.Mutex
		balance := map[string]int{} // adds minus removes, per user
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				user := fmt.Sprint("user", w%users)
				conn := fmt.Sprintf("%d.%d", w, w)
				// The even workers of the first four users end in the
				// channel; every other worker ends outside.
				for r := range rounds {
					_, added, err := s.Join(t.Context(), "presence-busy", conn, Member{UserID: user})
					if err != nil {
						errs <- err
						return
					}
					if added {
						mu.Lock()
						balance[user]++
						mu.Unlock()
					}
					if r == rounds-1 && w%2 == 0 && w%users < 4 {
						return
					}
					got, removed, err := s.Leave(t.Context(), "presence-busy", conn)
					if err != nil || got != user {
						errs <- fmt.Errorf("leave %s: %q, %v", conn, got, err)
						return
					}
					if removed {
						mu.Lock()
						balance[user]--
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// The first four users each have an even worker that stayed: they
		// are members, added once more than removed; the others were
		// removed as often as added.
		var want []Member
		for u := range users {
			user := fmt.Sprint("user", u)
			if u < 4 {
				want = append(want, Member{UserID: user})
				is.Equal(balance[user], 1)
			} else {
				is.Equal(balance[user], 0)
			}
		}
		sortMembers(want)
		is.Equal(members(t, s, "presence-busy"), want)
	})

	t.Run("stopping reports each member once and leaves none", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 0)
		ctx, cancel := context.WithCancel(t.Context())
		removals := make(chan removal, 100)
		done := make(chan error, 1)
		go func() {
			done <- s.Run(ctx, Events{Removed: func(c, u string) { removals <- removal{c, u} }})
		}()
		join(t, s, "presence-a", "1.1", Member{UserID: "ann"})
		join(t, s, "presence-a", "1.2", Member{UserID: "ann"})
		join(t, s, "presence-a", "2.1", Member{UserID: "bob"})
		join(t, s, "presence-b", "1.1", Member{UserID: "ann"})
		join(t, s, "presence-b", "3.1", Member{UserID: "carol"})
		leave(t, s, "presence-b", "3.1") // left already: not reported again

		cancel()
		select {
		case err := <-done:
			is.NoErr(err)
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of its context ending")
		}
		close(removals)
		var got []removal
		for r := range removals {
			got = append(got, r)
		}
		slices.SortFunc(got, compareRemovals)
		is.Equal(got, []removal{{"presence-a", "ann"}, {"presence-a", "bob"}, {"presence-b", "ann"}})
		is.Equal(members(t, s, "presence-a"), []Member{})
		is.Equal(members(t, s, "presence-b"), []Member{})
	})
}

// removal is one report of Events.Removed.
type removal struct{ channel, user string }

func compareRemovals(a, b removal) int {
	return cmp.Or(cmp.Compare(a.channel, b.channel), cmp.Compare(a.user, b.user))
}

func join(t *testing.T, s Store, channel, conn string, m Member) ([]Member, bool) {
	t.Helper()
	ms, added, err := s.Join(t.Context(), channel, conn, m)
	if err != nil {
		t.Fatalf("join %s as %s for %s: %v", channel, conn, m.UserID, err)
	}
	return ms, added
}

func leave(t *testing.T, s Store, channel, conn string) (string, bool) {
	t.Helper()
	user, removed, err := s.Leave(t.Context(), channel, conn)
	if err != nil {
		t.Fatalf("leave %s as %s: %v", channel, conn, err)
	}
	return user, removed
}

// members returns a channel's members, an empty slice for none, so tests
// compare with []Member{} whatever the store returns.
func members(t *testing.T, s Store, channel string) []Member {
	t.Helper()
	ms, err := s.Members(t.Context(), channel)
	if err != nil {
		t.Fatalf("members of %s: %v", channel, err)
	}
	if ms == nil {
		ms = []Member{}
	}
	return ms
}
