package inbox

import (
	"testing"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
)

// TestLuaValidOnOldestRedis reads every script in lua/ and fails on a Redis
// command or literal option newer than the oldest Redis the service runs
// on, branches no test takes included; the Redis tests (ValidOn) check
// what the scripts really ran, computed arguments included.
func TestLuaValidOnOldestRedis(t *testing.T) {
	redistest.CheckLuaFiles(t, redisconn.MinVersion, "lua/*.lua")
}
