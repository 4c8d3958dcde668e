// Package streamread reads the notification service's streams the way the
// load tools need to: lean, with buffers reused from one event to the next
// and no JSON decoding beyond what a Pusher message needs. It holds the SSE
// event reader, the WebSocket message reader, the Pusher message parser and
// the byte search that finds a run's message number in a frame.
// It does not connect, retry or count anything: scripts/loadgen and
// scripts/chaos do that, each in its own way.
package streamread

import "bytes"

// NumberAfter finds marker in frame and reads the decimal number after it,
// up to the closing quote (at most 9 digits). ok is false when the marker
// is absent or not followed by digits and a quote.
func NumberAfter(frame, marker []byte) (n int, ok bool) {
	i := bytes.Index(frame, marker)
	if i < 0 {
		return 0, false
	}
	digits := 0
	for _, c := range frame[i+len(marker):] {
		if c < '0' || c > '9' {
			return n, digits > 0 && c == '"'
		}
		if digits++; digits > 9 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return 0, false
}

// StringAfter returns the bytes after marker up to the next quote: the value
// of a JSON string field when marker is `"field":"`. The slice aliases frame.
func StringAfter(frame, marker []byte) ([]byte, bool) {
	i := bytes.Index(frame, marker)
	if i < 0 {
		return nil, false
	}
	rest := frame[i+len(marker):]
	for j, c := range rest {
		if c == '"' {
			return rest[:j], true
		}
		if c == '\\' {
			return nil, false // an escaped value is not one of ours
		}
	}
	return nil, false
}
