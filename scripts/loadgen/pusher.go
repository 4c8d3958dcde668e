package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"notification-service/scripts/internal/streamread"
)

// The Pusher client speaks the Pusher Channels protocol (version 7) at
// /app/{key}, as pusher-js does under laravel-echo: it waits for
// pusher:connection_established, subscribes to one channel (a public one,
// or its user's private channel signed as Laravel's /broadcasting/auth signs
// it), waits for pusher_internal:subscription_succeeded, and then reads
// events. Like the WebSocket client it is coder/websocket without
// compression, one goroutine per connection and a reused buffer; a
// message's data string is decoded into a second reused buffer, where the
// run's message number is found.

// pusherTarget is how Pusher streams connect: the app's key (and its
// secret, for private channels) and what each stream subscribes to.
type pusherTarget struct {
	key, secret string
	// userPrefix makes a user's private channel:
	// "private-" + userPrefix + user (Laravel's App.Models.User.{id}).
	userPrefix string
	// channel is the public channel every Pusher stream subscribes to; ""
	// means its user's private channel instead.
	channel string
}

var (
	eventPing        = []byte("pusher:ping")
	eventError       = []byte("pusher:error")
	eventEstablished = []byte("pusher:connection_established")
	eventSubscribed  = []byte("pusher_internal:subscription_succeeded")
	protocolPrefix   = []byte("pusher") // pusher: and pusher_internal: events
	socketIDField    = []byte(`"socket_id":"`)
	pusherPong       = []byte(`{"event":"pusher:pong","data":"{}"}`)
)

// openPusher connects s with the Pusher protocol and subscribes it to its
// channel. It returns the loop that reads the rest of the stream until it
// ends.
func openPusher(ctx context.Context, tg *target, s *stream, onNotification func(*stream, []byte)) (func() error, error) {
	ctx = withStreamIndex(ctx, s.index)
	ws, resp, err := websocket.Dial(ctx, tg.pusherURL(), &websocket.DialOptions{
		HTTPClient:      tg.wsClient,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("pusher: %s%s: %w", resp.Status, statusHint(resp.StatusCode), err)
		}
		return nil, fmt.Errorf("pusher: %w", err)
	}
	s.closer = closerFunc(ws.CloseNow)
	ws.SetReadLimit(1 << 20)

	var p streamread.PusherParser
	buf := make([]byte, 0, 1024)
	// next reads and parses one message; ctx bounds the handshake only,
	// as for the WebSocket client.
	next := func(ctx context.Context) (streamread.PusherMessage, error) {
		var err error
		if buf, err = streamread.ReadWSMessage(ctx, ws, buf); err != nil {
			return streamread.PusherMessage{}, err
		}
		msg, err := p.Parse(buf)
		if err != nil {
			return msg, fmt.Errorf("%w: %.200s", err, buf)
		}
		if bytes.Equal(msg.Event, eventError) {
			hint := ""
			if bytes.Contains(msg.Data, []byte(`"code":4001`)) {
				hint = " (start the server with PUSHER_APP_ID, PUSHER_APP_KEY and PUSHER_APP_SECRET, and give its key as -pusher-key)"
			}
			return msg, fmt.Errorf("server sent pusher:error: %.200s%s", msg.Data, hint)
		}
		return msg, nil
	}
	fail := func(what string, err error) (func() error, error) {
		ws.CloseNow()
		return nil, fmt.Errorf("pusher: %s: %w", what, err)
	}

	msg, err := next(ctx)
	if err != nil {
		return fail("waiting for connection_established", err)
	}
	if !bytes.Equal(msg.Event, eventEstablished) {
		return fail("first message", fmt.Errorf("is %q, not connection_established", msg.Event))
	}
	socketID, ok := streamread.StringAfter(msg.Data, socketIDField)
	if !ok {
		return fail("connection_established", fmt.Errorf("no socket_id in %.200s", msg.Data))
	}
	channel, subscribe, err := tg.pusher.subscription(s.user, string(socketID))
	if err != nil {
		return fail("subscribe", err)
	}
	if err := ws.Write(ctx, websocket.MessageText, subscribe); err != nil {
		return fail("subscribe", err)
	}
	for {
		msg, err := next(ctx)
		if err != nil {
			return fail("waiting for subscription_succeeded on "+channel, err)
		}
		if bytes.Equal(msg.Event, eventSubscribed) && string(msg.Channel) == channel {
			break
		}
	}

	return func() error {
		for {
			msg, err := next(context.Background())
			switch {
			case err != nil:
				return err
			case string(msg.Channel) == channel && !bytes.HasPrefix(msg.Event, protocolPrefix):
				onNotification(s, msg.Data)
			case bytes.Equal(msg.Event, eventPing):
				// pusher-js answers the server's pusher:ping; the
				// WebSocket ping beside it is answered by coder/websocket.
				if err := ws.Write(context.Background(), websocket.MessageText, pusherPong); err != nil {
					return fmt.Errorf("pusher: pong: %w", err)
				}
			}
		}
	}, nil
}

// pusherURL is where Pusher streams connect, with the query pusher-js
// sends.
func (tg *target) pusherURL() string {
	u := *tg.base
	u.Scheme = "ws"
	u.Path = strings.TrimSuffix(u.Path, "/") + "/app/" + url.PathEscape(tg.pusher.key)
	u.RawQuery = "protocol=7&client=loadgen&version=1.0&flash=false"
	return u.String()
}

// subscription is the channel a stream of user subscribes to and the
// pusher:subscribe message that asks for it on the connection socketID.
func (pt pusherTarget) subscription(user, socketID string) (string, []byte, error) {
	if pt.channel != "" {
		return pt.channel, fmt.Appendf(nil, `{"event":"pusher:subscribe","data":{"channel":%q}}`, pt.channel), nil
	}
	if pt.secret == "" {
		return "", nil, errors.New("a private channel needs the app's secret (-pusher-secret)")
	}
	channel := "private-" + pt.userPrefix + user
	return channel, fmt.Appendf(nil, `{"event":"pusher:subscribe","data":{"channel":%q,"auth":%q}}`,
		channel, channelAuth(pt.key, pt.secret, socketID, channel)), nil
}

// channelAuth signs a private channel subscription as Laravel's
// /broadcasting/auth does: key, a colon and the hex HMAC-SHA256 of
// "socket_id:channel". Written out here, as the JWT is (token.go), rather
// than borrowed from the service it measures.
func channelAuth(key, secret, socketID, channel string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(socketID + ":" + channel))
	return key + ":" + hex.EncodeToString(mac.Sum(nil))
}
