package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/matryer/is"
)

// Pusher's own example of a private channel signature
// (pusher.com/docs/channels/library_auth_reference/auth-signatures).
func TestChannelAuthIsPushers(t *testing.T) {
	is := is.New(t)
	is.Equal(channelAuth("278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "private-foobar"),
		"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4")
}

func TestTransportList(t *testing.T) {
	is := is.New(t)
	for flag, want := range map[string][]string{
		"sse": {"sse"}, "pusher": {"pusher"}, "mix": {"sse", "ws"}, "sse,ws,pusher": {"sse", "ws", "pusher"},
	} {
		got, err := transportList(flag)
		is.NoErr(err)
		is.Equal(got, want)
	}
	for _, bad := range []string{"", "sse,", "http", "sse,mix"} {
		_, err := transportList(bad)
		is.True(err != nil) // refused
	}
}

// A stand-in for the service's /app/{key}: the client must subscribe as
// Laravel's signature says, count each numbered message once per
// connection (a repeat is a duplicate), ignore other channels and other
// runs, answer pusher:ping, and end on pusher:error.
func TestPusherStreamCountsItsChannelsMessages(t *testing.T) {
	is := is.New(t)
	const key, secret, socketID = "app-key", "app-secret-1", "123.456"
	subscribed := make(chan map[string]any, 1)
	ponged := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/app/"+key || r.URL.Query().Get("protocol") != "7" {
			http.NotFound(w, r)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		write := func(s string) { _ = ws.Write(ctx, websocket.MessageText, []byte(s)) }
		write(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"` + socketID + `\",\"activity_timeout\":120}"}`)
		_, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var sub struct {
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(data, &sub)
		subscribed <- sub.Data
		ch, _ := sub.Data["channel"].(string)
		write(`{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"` + ch + `"}`)
		event := func(channel, title string) string {
			return `{"event":"loadgen","data":"{\"id\":\"x\",\"title\":\"` + title + `\",\"message\":\"a \\\"b\\\"\"}","channel":"` + channel + `"}`
		}
		write(event(ch, "lg-ab12cd-0"))
		write(event(ch, "lg-ab12cd-2"))
		write(event(ch, "lg-ab12cd-2"))      // a duplicate
		write(event("other", "lg-ab12cd-1")) // not its channel
		write(event(ch, "lg-ffffff-1"))      // another run's
		write(`{"event":"pusher:ping","data":"{}"}`)
		if _, data, err := ws.Read(ctx); err == nil && string(data) == `{"event":"pusher:pong","data":"{}"}` {
			ponged <- struct{}{}
		}
		write(`{"event":"pusher:error","data":{"code":4200,"message":"bye"}}`)
		_, _, _ = ws.Read(ctx) // until the client closes
	}))
	t.Cleanup(srv.Close)

	tg, err := newTarget(srv.URL, 10, nil)
	is.NoErr(err)
	tg.pusher = pusherTarget{key: key, secret: secret, userPrefix: "App.Models.User."}
	rec := newReceiver("ab12cd", time.Now())
	s := &stream{user: "u7", transport: "pusher", got: newTally(3)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read, err := openPusher(ctx, tg, s, rec.onNotification)
	is.NoErr(err)
	defer s.closer.Close()

	sub := <-subscribed
	is.Equal(sub["channel"], "private-App.Models.User.u7")
	is.Equal(sub["auth"], channelAuth(key, secret, socketID, "private-App.Models.User.u7"))

	err = read()
	is.True(err != nil && strings.Contains(err.Error(), "4200")) // pusher:error ends the stream
	select {
	case <-ponged:
	case <-ctx.Done():
		t.Fatal("no pusher:pong")
	}
	is.True(s.got.at[0] != 0 && s.got.at[2] != 0)
	is.Equal(s.got.at[1], int64(0)) // another channel's, another run's: not counted
	is.Equal(s.got.dup, 1)
	is.Equal(rec.fresh.Load(), int64(2))
}
