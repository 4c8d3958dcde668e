package schedule

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The Redis scheduler's scripts, one file each in lua/. Every file starts
// with what it takes (ARGV; keys are named from the prefix in ARGV[1]) and
// what it returns, and every script runs behind lua/prelude.lua.

//go:embed lua/prelude.lua
var luaPrelude string

func script(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }

var (
	//go:embed lua/add.lua
	addLua    string
	addScript = script(addLua)

	//go:embed lua/get.lua
	getLua    string
	getScript = script(getLua)

	//go:embed lua/list.lua
	listLua    string
	listScript = script(listLua)

	//go:embed lua/cancel.lua
	cancelLua    string
	cancelScript = script(cancelLua)

	//go:embed lua/claim.lua
	claimLua    string
	claimScript = script(claimLua)

	//go:embed lua/ack.lua
	ackLua    string
	ackScript = script(ackLua)

	//go:embed lua/release.lua
	releaseLua    string
	releaseScript = script(releaseLua)

	//go:embed lua/pass.lua
	passLua    string
	passScript = script(passLua)
)
