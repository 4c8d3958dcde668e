package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/matryer/is"
)

// testTrailStore checks the behaviour every TrailStore shares. newStore
// returns an empty store keeping capacity events.
func testTrailStore(t *testing.T, newStore func(t *testing.T, capacity int) TrailStore) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	ev := func(action, user, typ string, channels ...string) Event {
		e := Event{Time: at, Action: action, Instance: "i1", Type: typ, Channels: channels, Fields: map[string]any{"notification_id": "n-" + action}}
		if user != "" {
			e.UserIDs = []string{user}
		}
		return e
	}
	actions := func(es []Event) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Action)
		}
		return out
	}

	t.Run("latest first, filtered, after a cursor", func(t *testing.T) {
		is := is.New(t)
		s := newStore(t, 100)
		is.NoErr(s.Add(ctx, []Event{ev("send", "ann", "tarea", "orders"), ev("delivery", "ann", "tarea", "orders")}))
		is.NoErr(s.Add(ctx, []Event{ev("read", "bob", "info"), ev("denied", "", "")}))
		all, err := s.Latest(ctx, "", Filter{}, 10)
		is.NoErr(err)
		is.Equal(actions(all), []string{"denied", "read", "delivery", "send"})
		for i := 1; i < len(all); i++ {
			is.True(IDAfter(all[i-1].ID, all[i].ID)) // ids grow
		}
		is.Equal(all[3].UserIDs, []string{"ann"})
		is.Equal(all[3].Channels, []string{"orders"})
		is.Equal(all[3].Fields["notification_id"], "n-send")
		is.True(all[3].Time.Equal(at))

		for _, c := range []struct {
			f    Filter
			want []string
		}{
			{Filter{UserID: "ann"}, []string{"delivery", "send"}},
			{Filter{Type: "info"}, []string{"read"}},
			{Filter{Channel: "orders", Action: "send"}, []string{"send"}},
			{Filter{UserID: "ann", Type: "info"}, nil},
		} {
			got, err := s.Latest(ctx, "", c.f, 10)
			is.NoErr(err)
			is.Equal(actions(got), c.want)
		}
		got, err := s.Latest(ctx, "", Filter{}, 2)
		is.NoErr(err)
		is.Equal(actions(got), []string{"denied", "read"}) // limit keeps the newest

		// After the newest seen: only what came since.
		got, err = s.Latest(ctx, all[0].ID, Filter{}, 10)
		is.NoErr(err)
		is.Equal(len(got), 0)
		is.NoErr(s.Add(ctx, []Event{ev("fire", "carl", "recordatorio")}))
		got, err = s.Latest(ctx, all[0].ID, Filter{}, 10)
		is.NoErr(err)
		is.Equal(actions(got), []string{"fire"})
		got, err = s.Latest(ctx, all[2].ID, Filter{}, 10)
		is.NoErr(err)
		is.Equal(actions(got), []string{"fire", "denied", "read"})

		_, err = s.Latest(ctx, "nope", Filter{}, 10)
		is.Equal(err, ErrBadID)
	})

	t.Run("only about the capacity is kept and read", func(t *testing.T) {
		is := is.New(t)
		const capacity = 10
		s := newStore(t, capacity)
		for i := range 3 * capacity {
			is.NoErr(s.Add(ctx, []Event{ev(fmt.Sprint("a", i), "", "")}))
		}
		got, err := s.Latest(ctx, "", Filter{}, 100)
		is.NoErr(err)
		is.Equal(len(got), capacity)
		is.Equal(got[0].Action, fmt.Sprint("a", 3*capacity-1))
	})
}

func TestMemoryTrail(t *testing.T) {
	testTrailStore(t, func(t *testing.T, capacity int) TrailStore { return NewMemoryTrail(capacity) })
}

// TestIDAfter: event IDs order by milliseconds, then sequence, as numbers;
// every ID comes after "" and after what is not an ID.
func TestIDAfter(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1764754200123-1", "1764754200123-0", true},
		{"1764754200123-0", "1764754200123-1", false},
		{"1764754200124-0", "1764754200123-9", true},
		{"10-0", "9-0", true}, // not the strings' order
		{"9-10", "9-9", true},
		{"1764754200123-0", "1764754200123-0", false},
		{"1-0", "", true},
		{"", "1-0", false},
		{"", "", false},
		{"1-0", "nope", true},
		{"nope", "1-0", false},
		{"18446744073709551615-18446744073709551615", "18446744073709551615-18446744073709551614", true},
	} {
		if got := IDAfter(tc.a, tc.b); got != tc.want {
			t.Errorf("IDAfter(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
