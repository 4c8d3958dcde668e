package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
	"notification-service/store"
)

// Subscribe and unsubscribe routed over pub/sub: a connection lives on one
// instance, but a server-side (un)subscribe may arrive at any. The instance
// asks every other on bus:control and waits for the owner's answer on its
// own bus:reply:<instance>.

// Subscribe implements Bus.
func (b *Redis) Subscribe(ctx context.Context, c ChannelChange) (Subscription, error) {
	return b.route(ctx, opSubscribe, c)
}

// Unsubscribe implements Bus.
func (b *Redis) Unsubscribe(ctx context.Context, c ChannelChange) (Subscription, error) {
	return b.route(ctx, opUnsubscribe, c)
}

type controlRequest struct {
	ID       string   `json:"id"`
	ReplyTo  string   `json:"reply_to"`
	Op       changeOp `json:"op"`
	Conn     string   `json:"conn"`
	Channels []string `json:"channels"`
	Owner    string   `json:"owner,omitempty"`
}

func (r controlRequest) change() ChannelChange {
	return ChannelChange{ConnID: r.Conn, Channels: r.Channels, Owner: r.Owner}
}

type controlReply struct {
	ID    string       `json:"id"`
	Found bool         `json:"found"`
	Error string       `json:"error,omitempty"` // a code (replyErrors) or a message
	Sub   Subscription `json:"subscription"`
}

// replyErrors are the errors an owner's answer names by code, so the
// asking instance returns the same sentinel.
var replyErrors = map[string]error{"too_many_channels": ErrTooManyChannels, "not_owner": ErrNotOwner}

// route acts locally when the connection is here; otherwise it asks every
// instance over pub/sub and waits for the owner's answer, or for every
// instance to say it does not hold it. PUBLISH says how many instances
// listen, so "nobody has it" needs no timeout.
func (b *Redis) route(ctx context.Context, op changeOp, c ChannelChange) (Subscription, error) {
	connID := c.ConnID
	if sub, local, err := b.changeLocal(op, c); local {
		return sub, err
	}
	req := controlRequest{ID: redisconn.RandomHex(8), ReplyTo: b.instance, Op: op, Conn: connID, Channels: c.Channels, Owner: c.Owner}
	replies := make(chan controlReply, 64)
	b.pendingMu.Lock()
	if !b.listening {
		b.pendingMu.Unlock()
		return Subscription{}, fmt.Errorf("broker: route subscribe for %s: control channel not subscribed: %w", connID, store.ErrUnavailable)
	}
	b.pending[req.ID] = replies
	b.pendingMu.Unlock()
	defer func() {
		b.pendingMu.Lock()
		delete(b.pending, req.ID)
		b.pendingMu.Unlock()
	}()

	body, _ := json.Marshal(req)
	listeners, err := b.client.Publish(ctx, b.keys.Key("bus", "control"), body).Result()
	if err != nil {
		return Subscription{}, b.hooks.Wrap("broker: route subscribe for "+connID, err)
	}
	others := int(listeners) - 1 // this instance ignores its own requests
	timeout := time.NewTimer(controlTimeout)
	defer timeout.Stop()
	for answered := 0; answered < others; answered++ {
		select {
		case r := <-replies:
			if !r.Found {
				continue
			}
			if r.Error == "" {
				return r.Sub, nil
			}
			if sentinel, ok := replyErrors[r.Error]; ok {
				return Subscription{}, fmt.Errorf("broker: %s %s: %w", op, connID, sentinel)
			}
			return Subscription{}, fmt.Errorf("broker: %s %s on another instance: %s", op, connID, r.Error)
		case <-timeout.C:
			return Subscription{}, fmt.Errorf("broker: route subscribe for %s: %d of %d instances did not answer within %s: %w",
				connID, others-answered, others, controlTimeout, store.ErrUnavailable)
		case <-ctx.Done():
			return Subscription{}, fmt.Errorf("broker: route subscribe for %s: %w", connID, ctx.Err())
		}
	}
	// The connection may have arrived here while we asked.
	if sub, local, err := b.changeLocal(op, c); local {
		return sub, err
	}
	return Subscription{}, fmt.Errorf("broker: %s %s: %w", op, connID, ErrUnknownConnection)
}

// changeLocal changes the channels of a connection held here; local is
// false when this instance does not hold it.
func (b *Redis) changeLocal(op changeOp, c ChannelChange) (sub Subscription, local bool, err error) {
	sub, err = b.hub.apply(op, c)
	if errors.Is(err, ErrUnknownConnection) {
		return Subscription{}, false, nil
	}
	return sub, true, err
}

// listenControl answers subscribe requests for connections held here and
// routes answers to this instance's pending requests. go-redis resubscribes
// by itself after a reconnect.
func (b *Redis) listenControl(ctx context.Context) {
	controlCh := b.keys.Key("bus", "control")
	replyCh := b.keys.Key("bus", "reply", b.instance)
	ps := b.client.Subscribe(ctx, controlCh, replyCh)
	defer ps.Close()
	// With subscriptions in the stream, the confirmation of replyCh says
	// that answers to this instance's requests will arrive; until then
	// changeChannels refuses to route.
	events := ps.ChannelWithSubscriptions(redis.WithChannelSize(256))
	for {
		var m *redis.Message
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch ev := ev.(type) {
			case *redis.Subscription:
				if ev.Kind == "subscribe" && ev.Channel == replyCh {
					b.pendingMu.Lock()
					b.listening = true
					b.pendingMu.Unlock()
				}
				continue
			case *redis.Message:
				m = ev
			default:
				continue
			}
			switch m.Channel {
			case controlCh:
				b.answer(ctx, []byte(m.Payload))
			case replyCh:
				var r controlReply
				if json.Unmarshal([]byte(m.Payload), &r) != nil {
					continue
				}
				b.pendingMu.Lock()
				ch := b.pending[r.ID]
				b.pendingMu.Unlock()
				if ch != nil {
					select {
					case ch <- r:
					default:
					}
				}
			}
		}
	}
}

func (b *Redis) answer(ctx context.Context, payload []byte) {
	var req controlRequest
	if json.Unmarshal(payload, &req) != nil || req.ReplyTo == b.instance {
		return
	}
	reply := controlReply{ID: req.ID}
	sub, local, err := b.changeLocal(req.Op, req.change())
	if local {
		reply.Found, reply.Sub = true, sub
		if err != nil {
			reply.Error = err.Error()
			for code, sentinel := range replyErrors {
				if errors.Is(err, sentinel) {
					reply.Error = code
				}
			}
		}
	}
	body, _ := json.Marshal(reply)
	if err := b.client.Publish(ctx, b.keys.Key("bus", "reply", req.ReplyTo), body).Err(); err != nil && ctx.Err() == nil {
		b.logger.Warn("redis: answer a routed subscribe", slog.String("connection_id", req.Conn), slog.Any("error", err))
	}
}
