package pusher_test

import (
	"errors"
	"fmt"
	"time"

	"notification-service/pusher"
)

// The HTTP layer's part of POST /apps/{app_id}/events: which app, whether
// the request is signed, what it triggers, and what to answer when it is
// refused.
func ExampleVerifyRequest() {
	app := pusher.App{ID: "3", Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8"}
	r := pusher.APIRequest{
		Method:   "POST",
		Path:     "/apps/3/events",
		RawQuery: "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
		Body:     []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`),
	}
	now := time.Unix(1353088179, 0)

	err := app.CheckID("3")
	if err == nil {
		err = pusher.VerifyRequest(app, r, now, pusher.DefaultTimestampWindow)
	}
	var ev pusher.Event
	if err == nil {
		ev, err = pusher.ParseEvent(r.Body, pusher.EventLimits{})
	}
	if ae := (*pusher.APIError)(nil); errors.As(err, &ae) {
		fmt.Println(ae.Status, ae.Field, ae.Message) // answer and audit as "denied"
		return
	}
	fmt.Printf("200 {} after publishing %q on %v: %s\n", ev.Name, ev.Channels, ev.Data)

	r.Body = []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"other\"}"}`)
	err = pusher.VerifyRequest(app, r, now, 0)
	fmt.Println(errors.Is(err, pusher.ErrBodyMD5), err.(*pusher.APIError).Status)
	// Output:
	// 200 {} after publishing "foo" on [project-3]: {"some":"data"}
	// true 401
}

// The WebSocket transport's part of a presence subscription.
func ExampleParseClientMessage() {
	app := pusher.App{ID: "3", Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8"}
	socketID := "1234.1234" // pusher.NewSocketID() for a real connection
	frame := []byte(`{"event":"pusher:subscribe","data":{"auth":"278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c","channel_data":"{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Pusher\"}}","channel":"presence-foobar"}}`)

	var out []byte // the connection's reusable buffer
	m, err := pusher.ParseClientMessage(frame, pusher.DefaultMaxFrameBytes)
	if err == nil && m.Kind == pusher.MessageSubscribe {
		err = pusher.VerifyChannelAuth(app, socketID, m.Channel, m.Auth, m.ChannelData)
	}
	var me pusher.Member
	if err == nil && pusher.KindOf(m.Channel) == pusher.Presence {
		me, err = pusher.ParseChannelData(m.ChannelData, 0)
	}
	if err != nil {
		out = pusher.AppendErrorFor(out[:0], err) // the connection stays open
	} else {
		out = pusher.AppendPresenceSubscriptionSucceeded(out[:0], m.Channel, []pusher.Member{me})
	}
	fmt.Println(string(out))

	// A forged signature is a pusher:error 4009.
	err = pusher.VerifyChannelAuth(app, socketID, "presence-foobar", m.Auth, `{"user_id":1}`)
	fmt.Println(string(pusher.AppendErrorFor(out[:0], err)))
	// Output:
	// {"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"ids\":[\"10\"],\"hash\":{\"10\":{\"name\":\"Mr. Pusher\"}},\"count\":1}}","channel":"presence-foobar"}
	// {"event":"pusher:error","data":{"code":4009,"message":"invalid signature: expected the HMAC-SHA256 hex digest of \"1234.1234:presence-foobar:{\\\"user_id\\\":1}\""}}
}
