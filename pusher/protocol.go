package pusher

import "time"

// ProtocolVersion is the version of the Pusher Channels protocol this
// package speaks; pusher-js connects with ?protocol=7.
const ProtocolVersion = 7

// MinProtocolVersion is the oldest version served: Pusher no longer
// supports 1 to 3, and 4 to 7 differ only in what version 7 already does
// (close codes, ping and pong, activity_timeout).
const MinProtocolVersion = 4

// DefaultActivityTimeout is the activity_timeout pusher:connection_established
// announces when the transport has no other: a client pings after this long
// without a message. 120 s is the protocol's recommended value.
const DefaultActivityTimeout = 120 * time.Second

// CheckProtocolVersion reads the protocol query parameter of a WebSocket
// connection (/app/{key}?protocol=7) and returns the close code that refuses
// it, or NoCode when it is served: CodeNoProtocol when absent (the protocol
// documentation announces 4008 for this case), CodeInvalidVersion when it is
// not a plain decimal integer, CodeUnsupportedProtocol outside 4 to 7.
func CheckProtocolVersion(param string) Code {
	if param == "" {
		return CodeNoProtocol
	}
	v := 0
	for i := 0; i < len(param); i++ {
		c := param[i]
		if c < '0' || c > '9' {
			return CodeInvalidVersion
		}
		if v <= ProtocolVersion { // past that the value only matters as "too new"
			v = v*10 + int(c-'0')
		}
	}
	if v < MinProtocolVersion || v > ProtocolVersion {
		return CodeUnsupportedProtocol
	}
	return NoCode
}
