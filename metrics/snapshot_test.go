package metrics

import (
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
)

func TestSnapshot(t *testing.T) {
	is := is.New(t)
	m := New()
	m.ConnectionOpened("sse")
	m.ConnectionOpened("sse")
	m.ConnectionOpened("ws")
	m.ConnectionOpened("pusher")
	m.ConnectionClosed("ws", "slow_consumer")
	m.ConnectionClosed("sse", "client_closed")
	m.NotificationAccepted("send")
	m.NotificationAccepted("schedule")
	m.NotificationAccepted("pusher_api")
	m.FrameDropped()
	published := time.Now().Add(-3 * time.Millisecond)
	m.FramesWritten("sse", []*broker.Frame{{Seq: 1, Published: published}, {Seq: 2}, {Event: "read"}})
	m.FramesWritten("ws", []*broker.Frame{{Seq: 3, Published: published}})

	s := m.Snapshot()
	is.Equal(s.Connections, map[string]int{"sse": 1, "ws": 0, "pusher": 1})
	is.Equal(s.Accepted, uint64(3))
	is.Equal(s.Deliveries, uint64(3))
	is.Equal(s.DroppedFrames, uint64(1))
	is.Equal(s.SlowConsumers, uint64(1))
	is.Equal(len(s.LatencyBounds), len(latencyBuckets))
	is.Equal(len(s.LatencyCounts), len(latencyBuckets)+1)
	is.Equal(s.LatencyCounts[len(s.LatencyCounts)-1], uint64(2)) // the live deliveries observed
	is.Equal(s.LatencyCounts[0], uint64(0))                      // none under 100 µs
}
