package redisconn

import (
	"fmt"
	"io/fs"
)

// LuaFile returns lua/<name>.lua from a component's embedded scripts. A
// name without its file panics: it is called as the package loads, so no
// test run can miss it.
func LuaFile(scripts fs.FS, name string) string {
	b, err := fs.ReadFile(scripts, "lua/"+name+".lua")
	if err != nil {
		panic(fmt.Sprintf("redisconn: script %s: %v", name, err))
	}
	return string(b)
}
