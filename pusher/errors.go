package pusher

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Sentinels of the HTTP API. Every error the HTTP API functions return is an
// *APIError wrapping one of them, so callers branch with errors.Is (to audit
// the reason) and read the status from the *APIError (errors.As).
var (
	// ErrUnknownApp: the path's app id names no configured app (404).
	ErrUnknownApp = sentinel("unknown app")
	// ErrMalformedQuery: the query string does not parse, or names a
	// parameter twice (400).
	ErrMalformedQuery = sentinel("malformed query string")
	// ErrAuthMissing: auth_key, auth_timestamp, auth_version,
	// auth_signature or (with a body) body_md5 is absent (401).
	ErrAuthMissing = sentinel("missing authentication parameter")
	// ErrAuthVersion: auth_version is not 1.0 (401).
	ErrAuthVersion = sentinel("unsupported auth_version")
	// ErrAuthKey: auth_key is not the app's key (401).
	ErrAuthKey = sentinel("wrong auth_key")
	// ErrAuthTimestamp: auth_timestamp is not an integer within the window
	// around the server's clock (401).
	ErrAuthTimestamp = sentinel("auth_timestamp out of window")
	// ErrBodyMD5: body_md5 is not the MD5 of the body received: the body
	// was altered after signing (401).
	ErrBodyMD5 = sentinel("body_md5 does not match the body")
	// ErrSignature: auth_signature is not the HMAC of the request (401).
	ErrSignature = sentinel("invalid auth_signature")
	// ErrMalformedBody: the body is not one JSON object of valid UTF-8
	// within the nesting bound (400).
	ErrMalformedBody = sentinel("malformed request body")
	// ErrInvalidField: a field is missing or has the wrong type (422, with
	// the field, as Reverb's validator answers).
	ErrInvalidField = sentinel("invalid field")
	// ErrBadValue: a field of the right type whose value breaks one of
	// Pusher's rules: event name length or reserved prefix, channel name,
	// channel count, batch size, socket_id format (400, with the field, as
	// Pusher and soketi answer).
	ErrBadValue = sentinel("value breaks a Pusher rule")
	// ErrTooLarge: an event's data, or the whole body, is over its size
	// limit (413, as Pusher documents and soketi and Reverb answer).
	ErrTooLarge = sentinel("payload too large")
)

// Sentinels of the WebSocket protocol. Every error the WebSocket functions
// return is a *ProtocolError wrapping one of them.
var (
	// ErrFrameTooLarge: a client frame is over its size bound.
	ErrFrameTooLarge = sentinel("frame too large")
	// ErrMalformedFrame: a client frame is not a JSON object of valid
	// UTF-8 within the nesting bound, or lacks what its event requires.
	ErrMalformedFrame = sentinel("malformed frame")
	// ErrInvalidChannel: a channel name breaks Pusher's naming rule.
	ErrInvalidChannel = sentinel("invalid channel name")
	// ErrUnauthorized: a subscription's auth signature does not verify.
	ErrUnauthorized = sentinel("subscription unauthorized")
	// ErrInvalidChannelData: presence channel_data is missing, malformed
	// or over its bounds.
	ErrInvalidChannelData = sentinel("invalid channel_data")
)

type sentinelError string

func sentinel(s string) error         { return sentinelError(s) }
func (e sentinelError) Error() string { return "pusher: " + string(e) }

// APIError is a refused HTTP API request: what to answer and why.
type APIError struct {
	// Status is the HTTP status Pusher or Reverb answer for this refusal.
	Status int
	// Field names the body field at fault in Laravel's validator notation
	// ("name", "channels.3", "batch.0.data"); empty when no field is.
	Field string
	// Message is safe to return to the caller and to log: it never holds
	// the app secret or the signature the server expected.
	Message string
	// Err is the sentinel (ErrSignature, ErrInvalidField, ...).
	Err error
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return "pusher: " + e.Field + ": " + e.Message
	}
	return "pusher: " + e.Message
}

func (e *APIError) Unwrap() error { return e.Err }

// ProtocolError is a refused WebSocket frame or subscription: the
// pusher:error to answer (AppendErrorFor encodes it) and why. Refusing a
// frame does not close the connection; the transport decides that.
type ProtocolError struct {
	// Code is the pusher:error code; NoCode sends null, as Pusher does for
	// in-band errors that have no protocol code.
	Code Code
	// Message is safe to send to the client: it never holds the app
	// secret or the signature the server expected.
	Message string
	// Err is the sentinel (ErrMalformedFrame, ErrUnauthorized, ...).
	Err error
}

func (e *ProtocolError) Error() string { return "pusher: " + e.Message }

func (e *ProtocolError) Unwrap() error { return e.Err }

// BodyTooLarge is the refusal of an HTTP API body longer than limit bytes,
// for the HTTP layer that bounds its read: 413, as Reverb answers
// ("Payload too large.") and soketi ("The payload size is too big.").
func BodyTooLarge(limit int) *APIError {
	return &APIError{Status: 413, Message: "the request body is over " + strconv.Itoa(limit) + " bytes", Err: ErrTooLarge}
}

// truncate shortens s to at most n runes for an error message (a hostile
// channel name of 100 KB must not become a 100 KB log line), marking the cut,
// and replaces invalid UTF-8, so that every message is valid text.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	i, count := 0, 0
	for i < len(s) && count < n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	if i >= len(s) {
		return s
	}
	return s[:i] + "…"
}
