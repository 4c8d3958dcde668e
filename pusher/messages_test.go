package pusher_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/pusher"
)

// Frames exactly as pusher-js 8 and laravel-echo 2 send them.
func TestParseClientMessagePusherJSFrames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame string
		want  pusher.ClientMessage
	}{
		{"ping", `{"event":"pusher:ping","data":{}}`, pusher.ClientMessage{Kind: pusher.MessagePing, Event: "pusher:ping"}},
		{"pong", `{"event":"pusher:pong","data":{}}`, pusher.ClientMessage{Kind: pusher.MessagePong, Event: "pusher:pong"}},
		{"ping without data", `{"event":"pusher:ping"}`, pusher.ClientMessage{Kind: pusher.MessagePing, Event: "pusher:ping"}},
		{"subscribe to a public channel (auth is empty)", `{"event":"pusher:subscribe","data":{"auth":"","channel":"tareas"}}`,
			pusher.ClientMessage{Kind: pusher.MessageSubscribe, Event: "pusher:subscribe", Channel: "tareas"}},
		{"subscribe to a private channel", `{"event":"pusher:subscribe","data":{"auth":"` + docPrivateAuth + `","channel":"private-App.Models.User.1"}}`,
			pusher.ClientMessage{Kind: pusher.MessageSubscribe, Event: "pusher:subscribe", Channel: "private-App.Models.User.1", Auth: docPrivateAuth}},
		{"subscribe to a presence channel", `{"event":"pusher:subscribe","data":{"auth":"` + docPresenceAuth + `","channel_data":"{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Pusher\"}}","channel":"presence-foobar"}}`,
			pusher.ClientMessage{Kind: pusher.MessageSubscribe, Event: "pusher:subscribe", Channel: "presence-foobar", Auth: docPresenceAuth, ChannelData: docPresenceData}},
		{"subscribe with data encoded twice", `{"event":"pusher:subscribe","data":"{\"channel\":\"tareas\",\"auth\":\"\"}"}`,
			pusher.ClientMessage{Kind: pusher.MessageSubscribe, Event: "pusher:subscribe", Channel: "tareas"}},
		{"unsubscribe", `{"event":"pusher:unsubscribe","data":{"channel":"tareas"}}`,
			pusher.ClientMessage{Kind: pusher.MessageUnsubscribe, Event: "pusher:unsubscribe", Channel: "tareas"}},
		{"unsubscribe ignores auth", `{"event":"pusher:unsubscribe","data":{"channel":"private-x","auth":"k:s"}}`,
			pusher.ClientMessage{Kind: pusher.MessageUnsubscribe, Event: "pusher:unsubscribe", Channel: "private-x"}},
		{"Echo's whisper", `{"event":"client-typing","data":{"name":"Ana","typing":true},"channel":"private-chat.1"}`,
			pusher.ClientMessage{Kind: pusher.MessageClientEvent, Event: "client-typing", Channel: "private-chat.1", Data: []byte(`{"name":"Ana","typing":true}`)}},
		{"a client event on a public channel still parses (the transport refuses it)", `{"event":"client-x","data":{},"channel":"tareas"}`,
			pusher.ClientMessage{Kind: pusher.MessageClientEvent, Event: "client-x", Channel: "tareas", Data: []byte(`{}`)}},
		{"signin is not interpreted", `{"event":"pusher:signin","data":{"auth":"k::user::s","user_data":"{\"id\":\"1\"}"}}`,
			pusher.ClientMessage{Kind: pusher.MessageOther, Event: "pusher:signin"}},
		{"an event that is neither pusher: nor client-", `{"event":"tarea.creada","data":{},"channel":"tareas"}`,
			pusher.ClientMessage{Kind: pusher.MessageOther, Event: "tarea.creada"}},
		{"fields in another order, unknown ones ignored", `{"channel":"private-c","x":[1],"data":"hi","event":"client-a"}`,
			pusher.ClientMessage{Kind: pusher.MessageClientEvent, Event: "client-a", Channel: "private-c", Data: []byte("hi")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			m, err := pusher.ParseClientMessage([]byte(tc.frame), 0)
			is.NoErr(err)
			is.Equal(m.Kind, tc.want.Kind)
			is.Equal(m.Event, tc.want.Event)
			is.Equal(m.Channel, tc.want.Channel)
			is.Equal(m.Auth, tc.want.Auth)
			is.Equal(m.ChannelData, tc.want.ChannelData)
			is.Equal(string(m.Data), string(tc.want.Data))
		})
	}
}

// A client event's data becomes the string a server event carries.
func TestParseClientMessageRelayData(t *testing.T) {
	is := is.New(t)
	for data, want := range map[string]string{
		`{ "a" : [ 1, 2 ] }`:         `{"a":[1,2]}`,
		`"hello"`:                    `hello`,
		`"{\"a\":1}"`:                `{"a":1}`,
		`5`:                          `5`,
		`[1,"x"]`:                    `[1,"x"]`,
		`null`:                       `null`,
		`true`:                       `true`,
		`"</script>\u00e9\u2028"`:    "</script>é\u2028",
		`{"k":"\"quoted\" \\ back"}`: `{"k":"\"quoted\" \\ back"}`,
	} {
		m, err := pusher.ParseClientMessage([]byte(`{"event":"client-e","channel":"private-c","data":`+data+`}`), 0)
		is.NoErr(err)
		is.Equal(string(m.Data), want)
	}
	m, err := pusher.ParseClientMessage([]byte(`{"event":"client-e","channel":"private-c"}`), 0)
	is.NoErr(err)
	is.Equal(string(m.Data), "null") // no data relays as null
}

func TestParseClientMessageRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frame  string
		max    int
		reason error
	}{
		{"over the default bound", `{"event":"client-e","channel":"private-c","data":"` + strings.Repeat("x", pusher.DefaultMaxFrameBytes) + `"}`, 0, pusher.ErrFrameTooLarge},
		{"over a custom bound", `{"event":"pusher:ping","data":{}}`, 10, pusher.ErrFrameTooLarge},
		{"empty", ``, 0, pusher.ErrMalformedFrame},
		{"not JSON", `ping`, 0, pusher.ErrMalformedFrame},
		{"truncated", `{"event":"pusher:ping"`, 0, pusher.ErrMalformedFrame},
		{"an array", `[{"event":"pusher:ping"}]`, 0, pusher.ErrMalformedFrame},
		{"null", `null`, 0, pusher.ErrMalformedFrame},
		{"a string", `"pusher:ping"`, 0, pusher.ErrMalformedFrame},
		{"two objects", `{"event":"pusher:ping"}{"event":"pusher:ping"}`, 0, pusher.ErrMalformedFrame},
		{"invalid UTF-8", "{\"event\":\"client-\xff\",\"channel\":\"private-c\"}", 0, pusher.ErrMalformedFrame},
		{"an unpaired surrogate", `{"event":"client-e","channel":"private-c","data":"\ud800"}`, 0, pusher.ErrMalformedFrame},
		{"33 levels", `{"event":"client-e","channel":"private-c","data":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, 0, pusher.ErrMalformedFrame},
		{"no event", `{"data":{}}`, 0, pusher.ErrMalformedFrame},
		{"an empty event", `{"event":"","data":{}}`, 0, pusher.ErrMalformedFrame},
		{"a null event", `{"event":null}`, 0, pusher.ErrMalformedFrame},
		{"an event that is not a string", `{"event":["pusher:ping"]}`, 0, pusher.ErrMalformedFrame},
		{"an event name of 201 characters", `{"event":"client-` + strings.Repeat("x", 194) + `","channel":"private-c"}`, 0, pusher.ErrMalformedFrame},
		{"an event key in capitals", `{"Event":"pusher:ping"}`, 0, pusher.ErrMalformedFrame},

		{"subscribe without data", `{"event":"pusher:subscribe"}`, 0, pusher.ErrMalformedFrame},
		{"subscribe with null data", `{"event":"pusher:subscribe","data":null}`, 0, pusher.ErrMalformedFrame},
		{"subscribe with an array", `{"event":"pusher:subscribe","data":["tareas"]}`, 0, pusher.ErrMalformedFrame},
		{"subscribe with a number", `{"event":"pusher:subscribe","data":1}`, 0, pusher.ErrMalformedFrame},
		{"subscribe with a string that is not JSON", `{"event":"pusher:subscribe","data":"tareas"}`, 0, pusher.ErrMalformedFrame},
		{"subscribe with a string holding an array", `{"event":"pusher:subscribe","data":"[\"tareas\"]"}`, 0, pusher.ErrMalformedFrame},
		{"subscribe with a string nesting too deep", `{"event":"pusher:subscribe","data":"{\"channel\":\"c\",\"x\":` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}"}`, 0, pusher.ErrMalformedFrame},
		{"subscribe without a channel", `{"event":"pusher:subscribe","data":{"auth":""}}`, 0, pusher.ErrMalformedFrame},
		{"subscribe to an empty channel", `{"event":"pusher:subscribe","data":{"channel":""}}`, 0, pusher.ErrMalformedFrame},
		{"subscribe to a number", `{"event":"pusher:subscribe","data":{"channel":42}}`, 0, pusher.ErrMalformedFrame},
		{"subscribe to an invalid channel", `{"event":"pusher:subscribe","data":{"channel":"tareas nuevas"}}`, 0, pusher.ErrInvalidChannel},
		{"subscribe to a channel of 165 characters", `{"event":"pusher:subscribe","data":{"channel":"` + strings.Repeat("c", 165) + `"}}`, 0, pusher.ErrInvalidChannel},
		{"an auth that is not a string", `{"event":"pusher:subscribe","data":{"channel":"private-c","auth":{"k":"s"}}}`, 0, pusher.ErrMalformedFrame},
		{"channel_data as an object: its bytes are what is signed", `{"event":"pusher:subscribe","data":{"channel":"presence-c","auth":"k:s","channel_data":{"user_id":1}}}`, 0, pusher.ErrMalformedFrame},
		{"unsubscribe without a channel", `{"event":"pusher:unsubscribe","data":{}}`, 0, pusher.ErrMalformedFrame},
		{"unsubscribe from an invalid channel", `{"event":"pusher:unsubscribe","data":{"channel":"a/b"}}`, 0, pusher.ErrInvalidChannel},

		{"a client event without a channel", `{"event":"client-typing","data":{}}`, 0, pusher.ErrMalformedFrame},
		{"a client event with the channel in data", `{"event":"client-typing","data":{"channel":"private-c"}}`, 0, pusher.ErrMalformedFrame},
		{"a client event on an invalid channel", `{"event":"client-typing","channel":"private c","data":{}}`, 0, pusher.ErrInvalidChannel},
		{"a client event with a numeric channel", `{"event":"client-typing","channel":7,"data":{}}`, 0, pusher.ErrMalformedFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			m, err := pusher.ParseClientMessage([]byte(tc.frame), tc.max)
			is.Equal(m.Event, "")
			var pe *pusher.ProtocolError
			is.True(errors.As(err, &pe))
			is.True(errors.Is(err, tc.reason))
			is.Equal(pe.Code, pusher.NoCode) // in-band, "code":null, the connection stays
			is.True(len(pe.Message) < 300)
		})
	}
}

func TestMessageKindString(t *testing.T) {
	is := is.New(t)
	for k, s := range map[pusher.MessageKind]string{
		pusher.MessageOther: "other", pusher.MessagePing: "ping", pusher.MessagePong: "pong",
		pusher.MessageSubscribe: "subscribe", pusher.MessageUnsubscribe: "unsubscribe", pusher.MessageClientEvent: "client event",
	} {
		is.Equal(k.String(), s)
	}
}
