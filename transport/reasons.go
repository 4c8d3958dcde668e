package transport

import (
	"github.com/coder/websocket"

	"notification-service/pusher"
)

// reason is why a stream ends. It is recorded in the disconnect audit event
// and the disconnects metric, and told to the client the way its transport
// can (endings).
type reason string

const (
	reasonClientClosed  reason = "client_closed"
	reasonSlowConsumer  reason = "slow_consumer"
	reasonShutdown      reason = "server_shutdown"
	reasonPingTimeout   reason = "ping_timeout"
	reasonWriteFailed   reason = "write_failed"
	reasonReplayFailed  reason = "replay_failed"
	reasonTokenExpired  reason = "token_expired"
	reasonFrameTooLarge reason = "frame_too_large"
	// reasonResync: the instance's live feed had a gap it could not fill
	// (cut off from Redis too long, or Redis lost its data); the client
	// reconnects and resumes from its cursor.
	reasonResync reason = "resync"
)

// reasonCursorExpired is not an end: it is the reason a resumed stream
// starts with a reset event.
const reasonCursorExpired = "cursor_expired"

// ending is how a stream that ends for one reason tells its client, on each
// transport: the one table every transport reads, so a new reason or a new
// transport is one place to fill in.
type ending struct {
	// sseEvent is the last SSE event: "reconnect" (the browser's own
	// retry then finds this or another instance), "error" (with code and
	// message), or "" when the client is gone or cannot be told.
	sseEvent string
	// wsClose is the WebSocket close code; 0 drops the connection without
	// a close frame (the peer is gone or stopped answering).
	wsClose websocket.StatusCode
	// wsErrorFrame sends an error frame with code and message before the
	// close, for clients that read frames but not close codes.
	wsErrorFrame bool
	// pusherClose is the Pusher protocol's close code (4200: reconnect at
	// once, 4100: reconnect with backoff, 4201: pong not received);
	// NoCode falls back to wsClose.
	pusherClose pusher.Code
	// message explains the reason to a person; "" uses the reason itself.
	message string
}

// statusTokenExpired closes a WebSocket whose token expired: in the range
// RFC 6455 leaves to applications, 4000 plus HTTP's 401, so a client tells
// it from a network drop and fetches a new token before reconnecting.
const statusTokenExpired websocket.StatusCode = 4001

var endings = map[reason]ending{
	reasonClientClosed: {},
	reasonWriteFailed:  {},
	reasonPingTimeout:  {pusherClose: pusher.CodePongTimeout},
	reasonShutdown:     {sseEvent: "reconnect", wsClose: websocket.StatusServiceRestart, pusherClose: pusher.CodeReconnect},
	reasonResync:       {sseEvent: "reconnect", wsClose: websocket.StatusTryAgainLater, pusherClose: pusher.CodeReconnect},
	reasonSlowConsumer: {sseEvent: "error", wsClose: websocket.StatusTryAgainLater, pusherClose: pusher.CodeOverCapacity,
		message: "the connection fell too far behind; reconnect to resume from your last event id"},
	reasonReplayFailed: {sseEvent: "error", wsClose: websocket.StatusInternalError, pusherClose: pusher.CodeReconnect,
		message: "could not replay missed notifications; reconnect"},
	reasonTokenExpired: {sseEvent: "error", wsClose: statusTokenExpired, wsErrorFrame: true,
		message: "the token has expired; get a new token and reconnect with it"},
	reasonFrameTooLarge: {sseEvent: "error", wsClose: websocket.StatusMessageTooBig,
		message: "a frame exceeded the size limit"},
}

// endingOf is r's row; an unknown reason is told as an error.
func endingOf(r reason) ending {
	if e, ok := endings[r]; ok {
		return e
	}
	return ending{sseEvent: "error"}
}

// text is what a person reads about r.
func (e ending) text(r reason) string {
	if e.message != "" {
		return e.message
	}
	return string(r)
}
