package presence

import (
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
	"notification-service/store"
)

// TestRedisFailedLeaveIsSentAgain closes connections while Redis is away
// for a moment, too short for the instance to lapse: their Leaves fail, and
// without more their members would stay listed for as long as the instance
// lives. Run sends them again once Redis is back and reports the members
// they remove, but not the Leave of a connection that subscribed again in
// the meantime.
func TestRedisFailedLeaveIsSentAgain(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{Persistent: true, ValidOn: redisconn.MinVersion})
	// A lapse far longer than the outage: no sweep removes anything here.
	s := NewRedis(srv.Client(), RedisOptions{Prefix: hostilePrefix(), Heartbeat: testHeartbeat, Lapse: time.Minute})
	for conn, user := range map[string]string{"1.1": "ann", "1.2": "bob", "1.3": "cat"} {
		join(t, s, "presence-room", conn, Member{UserID: user})
	}

	srv.Stop()
	for _, conn := range []string{"1.1", "1.2"} {
		_, _, err := s.Leave(t.Context(), "presence-room", conn)
		is.True(errors.Is(err, store.ErrUnavailable))
	}
	srv.Restart() // with its data
	// bob's connection subscribes again before Run is back: its failed
	// Leave must not remove it later.
	_, added := join(t, s, "presence-room", "1.2", Member{UserID: "bob"})
	is.True(!added) // still recorded: the Leave never reached Redis

	rec := newRecorder()
	run(t, s, rec.events("s"))
	rec.waitFor(t, 10*testLapse, "ann's Leave sent again", func() bool { return len(rec.sorted()) > 0 })
	streamtest.Eventually(t, "no Leave left to send", func() bool {
		s.leaves.mu.Lock()
		defer s.leaves.mu.Unlock()
		return len(s.leaves.m) == 0
	})
	is.Equal(rec.sorted(), []removal{{"presence-room", "ann"}})
	is.Equal(members(t, s, "presence-room"), []Member{{UserID: "bob"}, {UserID: "cat"}})
}
