package transport_test

import (
	"testing"

	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// TestRoutingEndToEnd: the routing rule through real clients on both
// transports, each frame checked in order with a marker at the end, so a
// duplicate or a stray notification shows up before it.
func TestRoutingEndToEnd(t *testing.T) {
	for _, kind := range []string{"sse", "ws"} {
		t.Run(kind, func(t *testing.T) {
			is := is.New(t)
			ts := newTestServer(t)
			c := ts.dialStream(t, kind, query("user_id", "alice", "channels", "a,b"), "")
			c.Ready(t)

			var want []string
			for _, step := range []struct {
				body map[string]any
				gets bool
			}{
				{map[string]any{"title": "on a and b", "channels": []string{"a", "b"}}, true},
				{map[string]any{"title": "on c", "channels": []string{"c"}}, false},
				{map[string]any{"title": "to bob", "user_id": "bob"}, false},
				{map[string]any{"title": "to bob on a", "user_id": "bob", "channels": []string{"a"}}, false},
				{map[string]any{"title": "to alice on c", "user_id": "alice", "channels": []string{"c"}}, false},
				{map[string]any{"title": "to alice on b and a", "user_id": "alice", "channels": []string{"b", "a"}}, true},
				{map[string]any{"title": "to alice and bob", "user_ids": []string{"bob", "alice"}}, true},
				{map[string]any{"title": "on c and b", "channels": []string{"c", "b"}}, true},
				{map[string]any{"title": "to alice", "user_id": "alice"}, true},
			} {
				id := ts.send(t, step.body)
				if step.gets {
					want = append(want, id)
				}
			}
			marker := ts.send(t, map[string]any{"title": "marker", "channels": []string{"a"}})
			want = append(want, marker)

			got := c.NextNotifications(t, len(want))
			is.Equal(streamtest.IDs(got), want)
			checkIncreasing(t, got, 0)
		})
	}
}
