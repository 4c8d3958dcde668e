package instances

import (
	"testing"
	"time"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
)

func TestRedis(t *testing.T) {
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	testRegistry(t, func(t *testing.T, lapse time.Duration) Registry {
		return NewRedis(client, RedisOptions{Prefix: redistest.HostilePrefix(), Lapse: lapse})
	})
}

func TestLuaValidOnOldestRedis(t *testing.T) {
	redistest.CheckLuaFiles(t, redisconn.MinVersion, "lua/*.lua")
}
