package broker

import (
	"embed"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// The Redis bus's scripts, one file each in lua/. Every file starts with
// what it takes (KEYS, ARGV) and what it returns.

//go:embed lua/*.lua
var luaFiles embed.FS

var (
	// publishLua runs after the inbox's chunk (ScriptedLog.AppendLua), so
	// a bus builds its publish script itself (NewRedis).
	publishLua = lua("publish")

	notifyScript       = redis.NewScript(lua("notify"))
	feedPositionScript = redis.NewScript(lua("feed_position"))
	replayScript       = redis.NewScript(lua("replay"))
	renewEpochScript   = redis.NewScript(lua("renew_epoch"))
)

func lua(name string) string { return redisconn.LuaFile(luaFiles, name) }
