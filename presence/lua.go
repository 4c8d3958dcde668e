package presence

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/redis/go-redis/v9"
)

// The Redis store's scripts, one file each in lua/, every file starting with
// what it takes (KEYS, ARGV) and what it returns. membership.lua defines
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
	return redis.NewScript(luaFile("membership") + luaFile(name))
}

// luaFile returns lua/<name>.lua. A missing file panics: it is read as the
// package loads, so no test run can miss it.
func luaFile(name string) string {
	b, err := fs.ReadFile(luaFiles, "lua/"+name+".lua")
	if err != nil {
		panic(fmt.Sprintf("presence: script %s: %v", name, err))
	}
	return string(b)
}
