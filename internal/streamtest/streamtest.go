// Package streamtest is how the service's tests read a stream: the real
// Server-Sent Events and WebSocket clients they connect with, the one
// vocabulary both satisfy (Stream, Frame: next frame, next event, next
// notification), and the bound on every wait (WaitTimeout, Eventually;
// EventuallyWithin where a package needs a longer one).
// Every test package reads a stream the same way: the text/event-stream
// parser (events, ids, retry fields, comments), the checks an SSE event must
// pass to be a frame, the WebSocket frame reader and close status.
//
// It does not know the service's types (no broker, no transport): it reads
// what goes over the wire, so any package's tests can import it.
//
// It is test support: only _test.go files import it, never production code.
package streamtest

import "net/url"

// Query builds a query string from key, value pairs.
func Query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}
