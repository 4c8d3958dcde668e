package presence

import (
	"embed"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// The Redis store's scripts, one file each in lua/, every file starting with
// what it takes (KEYS, ARGV) and what it returns. prelude.lua defines
// what they share and goes in front of each.

//go:embed lua/*.lua
var luaFiles embed.FS

var (
	heartbeatScript = script("heartbeat")
	joinScript      = script("join")
	leaveScript     = script("leave")
	sweepScript     = script("sweep")
)

func script(name string) *redis.Script {
	return redis.NewScript(redisconn.LuaFile(luaFiles, "prelude") + redisconn.LuaFile(luaFiles, name))
}
