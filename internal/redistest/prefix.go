package redistest

import (
	"fmt"
	"sync/atomic"

	"notification-service/internal/redisconn"
)

var prefixes atomic.Int64

// HostilePrefix is a key prefix no other call returns, full of what could
// break a key built in Lua or a pattern: quotes, a backslash, braces, "]]",
// a space, a newline, '%'. Stores a test makes on one server never see
// each other's keys unless the test means them to.
func HostilePrefix() redisconn.Prefix {
	return redisconn.Prefix(fmt.Sprintf("t%d \"'\\{x}]]=]\n%%s:", prefixes.Add(1)))
}
