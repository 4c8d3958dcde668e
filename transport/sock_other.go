//go:build !unix

package transport

// writeNow writes nothing where write(2) is not at hand: every write then
// waits on a goroutine of the connection's own (conn.drain).
func writeNow(uintptr, []byte) (int, error) { return 0, nil }
