// Package streamtest holds the real Server-Sent Events and WebSocket clients
// the service's tests connect with, so every test package reads a stream
// the same way: the text/event-stream parser (events, ids, retry fields,
// comments), the WebSocket frame reader and close status, and the bound on
// every wait for an event.
//
// It is test support: only _test.go files import it, never production code.
package streamtest

import (
	"net/url"
	"time"
)

// WaitTimeout bounds every wait for an event; tests never sleep to hope.
const WaitTimeout = 5 * time.Second

// Query builds a query string from key, value pairs.
func Query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}
