package inbox

import _ "embed"

// The Redis store's Lua, one file each in lua/. Every script is chunk.lua
// (behind the literals appendChunk writes), then operations.lua, then its
// own file, which starts with what it takes (ARGV) and returns. The chunk
// alone is what the bus's publish script runs (AppendLua).

var (
	//go:embed lua/chunk.lua
	chunkLua string
	//go:embed lua/operations.lua
	operationsLua string

	//go:embed lua/append.lua
	appendLua string
	//go:embed lua/list.lua
	listLua string
	//go:embed lua/since.lua
	sinceLua string
	//go:embed lua/unread.lua
	unreadLua string
	//go:embed lua/mark_read.lua
	markReadLua string
	//go:embed lua/mark_all_read.lua
	markAllReadLua string
	//go:embed lua/delete.lua
	deleteLua string
)
