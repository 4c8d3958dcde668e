// Package pusher owns the pure logic of the Pusher Channels protocol
// (version 7) and of the Pusher HTTP API, the two wire formats Laravel's
// broadcasting speaks: the reverb and pusher broadcasters sign HTTP API
// requests, and laravel-echo with pusher-js speaks the WebSocket protocol.
//
// It owns: the configured app and its validation (app.go); HTTP API request
// signatures (signature.go); the bodies of POST /apps/{id}/events and
// /batch_events (events.go); channel names and kinds (channel.go); the
// signatures Laravel's /broadcasting/auth returns and presence channel_data
// (channelauth.go); socket ids (socketid.go); the client frames a WebSocket
// receives (messages.go) and the server messages it sends, encoded byte for
// byte as Pusher sends them (encode.go); the protocol's close and error codes
// (codes.go) and version parameter (protocol.go).
//
// It does not own HTTP or WebSocket handling, presence membership, rate
// limits, or the mapping of events to the service's notifications: it never
// imports net/http, keeps no state and starts no goroutine. Every parser takes
// hostile bytes and answers with a typed error (*APIError for the HTTP API,
// *ProtocolError for the WebSocket) that carries what the caller must answer
// (an HTTP status, or a pusher:error code) and a message safe to show: no
// error, String or log value in this package contains an app secret or an
// expected signature.
package pusher
