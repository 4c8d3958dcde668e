package audit

import (
	"fmt"
	"sync/atomic"
	"testing"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
)

var prefixes atomic.Int64

func TestRedisTrail(t *testing.T) {
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	testTrailStore(t, func(t *testing.T, capacity int) TrailStore {
		prefix := redisconn.Prefix(fmt.Sprintf("t%d \"'\\{x}\n%%s:", prefixes.Add(1)))
		return NewRedisTrail(client, RedisTrailOptions{Prefix: prefix, Capacity: capacity})
	})
}
