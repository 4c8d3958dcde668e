package audit

import (
	"testing"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
)

func TestRedisTrail(t *testing.T) {
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	testTrailStore(t, func(t *testing.T, capacity int) TrailStore {
		return NewRedisTrail(client, RedisTrailOptions{Prefix: redistest.HostilePrefix(), Capacity: capacity})
	})
}
