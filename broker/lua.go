package broker

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The Redis bus's scripts, one file each in lua/. Every file starts with
// what it takes (KEYS, ARGV) and what it returns.

// publishLua runs after the inbox's chunk (ScriptedLog.AppendLua), so a
// bus builds its publish script itself (NewRedis).
//
//go:embed lua/publish.lua
var publishLua string

var (
	//go:embed lua/notify_user.lua
	notifyUserLua    string
	notifyUserScript = redis.NewScript(notifyUserLua)

	//go:embed lua/feed_position.lua
	feedPositionLua    string
	feedPositionScript = redis.NewScript(feedPositionLua)

	//go:embed lua/replay.lua
	replayLua    string
	replayScript = redis.NewScript(replayLua)

	//go:embed lua/renew_epoch.lua
	renewEpochLua    string
	renewEpochScript = redis.NewScript(renewEpochLua)
)
