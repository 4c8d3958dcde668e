package redisconn

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Hooks tell the owner of a Redis component (the metrics) how its traffic
// with Redis goes. A nil func tells nobody, so the zero value is ready.
type Hooks struct {
	// OnError is called for each command that failed.
	OnError func()
	// OnReconnect is called when the component reaches Redis again after
	// failing to: Redis is back.
	OnReconnect func()
}

// Wrap is the package's Wrap that also calls OnError when err is a failed
// command. redis.Nil is an answer and the caller's own cancellation is not
// Redis's doing: neither counts.
func (h Hooks) Wrap(op string, err error) error {
	if err != nil && !errors.Is(err, redis.Nil) && !errors.Is(err, context.Canceled) && h.OnError != nil {
		h.OnError()
	}
	return Wrap(op, err)
}

// Reconnected calls OnReconnect.
func (h Hooks) Reconnected() {
	if h.OnReconnect != nil {
		h.OnReconnect()
	}
}
