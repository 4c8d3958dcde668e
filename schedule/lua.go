package schedule

import (
	"embed"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// The Redis scheduler's scripts, one file each in lua/. Every file starts
// with what it takes (ARGV; keys are named from the prefix in ARGV[1]) and
// what it returns, and every script runs behind lua/prelude.lua.

//go:embed lua/*.lua
var luaFiles embed.FS

var (
	addScript     = script("add")
	getScript     = script("get")
	listScript    = script("list")
	indexScript   = script("index")
	cancelScript  = script("cancel")
	claimScript   = script("claim")
	ackScript     = script("ack")
	releaseScript = script("release")
	passScript    = script("pass")
)

// script is lua/<name>.lua behind lua/prelude.lua.
func script(name string) *redis.Script {
	return redis.NewScript(lua("prelude") + lua(name))
}

func lua(name string) string { return redisconn.LuaFile(luaFiles, name) }
