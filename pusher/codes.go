package pusher

import "strconv"

// Code is a Pusher Channels protocol code: the close code of a WebSocket the
// server closes, and the code of a pusher:error message. The ranges tell a
// client what to do next (see Reconnect). The numbers and meanings are those
// of Pusher's protocol documentation ("Pusher Channels Protocol", Error
// Codes), which pusher-js, Reverb and soketi follow.
type Code int

// NoCode is the absent code: a pusher:error carrying it sends "code":null,
// as Pusher does for in-band errors with no protocol code ("Existing
// subscription to channel …"). It is never a close code.
const NoCode Code = 0

// 4000-4099: the connection SHOULD NOT be re-established unchanged.
const (
	CodeSSLOnly             Code = 4000 // Application only accepts SSL connections, reconnect using wss://
	CodeAppNotFound         Code = 4001 // Application does not exist
	CodeAppDisabled         Code = 4003 // Application disabled
	CodeOverQuota           Code = 4004 // Application is over connection quota
	CodePathNotFound        Code = 4005 // Path not found
	CodeInvalidVersion      Code = 4006 // Invalid version string format
	CodeUnsupportedProtocol Code = 4007 // Unsupported protocol version
	CodeNoProtocol          Code = 4008 // No protocol version supplied
	CodeUnauthorized        Code = 4009 // Connection is unauthorized
)

// 4100-4199: reconnect after backing off at least a second.
const (
	CodeOverCapacity Code = 4100 // Over capacity
)

// 4200-4299: reconnect immediately.
const (
	CodeReconnect   Code = 4200 // Generic reconnect immediately
	CodePongTimeout Code = 4201 // Pong reply not received
	CodeInactive    Code = 4202 // Closed after inactivity
)

// 4300-4399: any other error.
const (
	CodeClientEventRateLimit Code = 4301 // Client event rejected due to rate limit
	CodeWatchlistLimit       Code = 4302 // Watchlist limit exceeded
)

var codeMessages = map[Code]string{
	CodeSSLOnly:              "Application only accepts SSL connections, reconnect using wss://",
	CodeAppNotFound:          "Application does not exist",
	CodeAppDisabled:          "Application disabled",
	CodeOverQuota:            "Application is over connection quota",
	CodePathNotFound:         "Path not found",
	CodeInvalidVersion:       "Invalid version string format",
	CodeUnsupportedProtocol:  "Unsupported protocol version",
	CodeNoProtocol:           "No protocol version supplied",
	CodeUnauthorized:         "Connection is unauthorized",
	CodeOverCapacity:         "Over capacity",
	CodeReconnect:            "Generic reconnect immediately",
	CodePongTimeout:          "Pong reply not received",
	CodeInactive:             "Closed after inactivity",
	CodeClientEventRateLimit: "Client event rejected due to rate limit",
	CodeWatchlistLimit:       "Watchlist limit exceeded",
}

// Message is the protocol's wording for c, fit for a close reason (at most
// 64 bytes, well under the WebSocket limit of 123) and a pusher:error
// message; "" for a code the protocol does not define.
func (c Code) Message() string { return codeMessages[c] }

// String names the code for logs: "4009 Connection is unauthorized".
func (c Code) String() string {
	if c == NoCode {
		return "no code"
	}
	if m := c.Message(); m != "" {
		return strconv.Itoa(int(c)) + " " + m
	}
	return strconv.Itoa(int(c))
}

// Reconnect is what a client should do after the server closed its
// connection with a code.
type Reconnect int

const (
	// ReconnectUnspecified: the code is outside 4000-4299; the protocol
	// leaves the choice to the client.
	ReconnectUnspecified Reconnect = iota
	// ReconnectNever: 4000-4099, reconnecting unchanged will fail again.
	ReconnectNever
	// ReconnectBackoff: 4100-4199, reconnect after at least one second.
	ReconnectBackoff
	// ReconnectImmediately: 4200-4299.
	ReconnectImmediately
)

// Reconnect reads c's range.
func (c Code) Reconnect() Reconnect {
	switch {
	case c >= 4000 && c <= 4099:
		return ReconnectNever
	case c >= 4100 && c <= 4199:
		return ReconnectBackoff
	case c >= 4200 && c <= 4299:
		return ReconnectImmediately
	}
	return ReconnectUnspecified
}

func (r Reconnect) String() string {
	switch r {
	case ReconnectNever:
		return "never"
	case ReconnectBackoff:
		return "after backoff"
	case ReconnectImmediately:
		return "immediately"
	}
	return "unspecified"
}
