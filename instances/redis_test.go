package instances

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
)

var prefixes atomic.Int64

func hostilePrefix() redisconn.Prefix {
	return redisconn.Prefix(fmt.Sprintf("t%d \"'\\{x}\n%%s:", prefixes.Add(1)))
}

func TestRedis(t *testing.T) {
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	testRegistry(t, func(t *testing.T, lapse time.Duration) Registry {
		return NewRedis(client, RedisOptions{Prefix: hostilePrefix(), Lapse: lapse})
	})
}

func TestLuaValidOnOldestRedis(t *testing.T) {
	redistest.CheckLuaFiles(t, redisconn.MinVersion, "lua/*.lua")
}
