package inbox

import (
	"embed"

	"notification-service/internal/redisconn"
)

// The Redis store's Lua, one file each in lua/. Every script is chunk.lua
// (behind the literals appendChunk writes), then operations.lua, then its
// own file, which starts with what it takes (ARGV) and returns. The chunk
// alone is what the bus's publish script runs (AppendLua).

//go:embed lua/*.lua
var luaFiles embed.FS

var (
	chunkLua      = lua("chunk")
	operationsLua = lua("operations")

	appendLua      = lua("append")
	listLua        = lua("list")
	sinceLua       = lua("since")
	unreadLua      = lua("unread")
	markReadLua    = lua("mark_read")
	markAllReadLua = lua("mark_all_read")
	deleteLua      = lua("delete")
)

func lua(name string) string { return redisconn.LuaFile(luaFiles, name) }
