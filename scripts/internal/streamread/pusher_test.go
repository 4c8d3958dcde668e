package streamread

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/matryer/is"
)

func TestPusherParser(t *testing.T) {
	is := is.New(t)
	var p PusherParser
	type message struct{ event, channel, data string }
	parse := func(frame string) message {
		t.Helper()
		m, err := p.Parse([]byte(frame))
		is.NoErr(err)
		return message{string(m.Event), string(m.Channel), string(m.Data)}
	}
	// As the service sends them (pusher.AppendConnectionEstablished, AppendEvent, AppendError).
	is.Equal(parse(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}`),
		message{"pusher:connection_established", "", `{"socket_id":"123.456","activity_timeout":120}`})
	is.Equal(parse(`{"event":"loadgen","data":"{\"id\":\"n1\",\"title\":\"lg-ab12cd-7\",\"message\":\"a \\\"quoted\\\" \u00e9\ud83d\ude00\"}","channel":"lg-ab12cd"}`),
		message{"loadgen", "lg-ab12cd", `{"id":"n1","title":"lg-ab12cd-7","message":"a \"quoted\" é😀"}`})
	is.Equal(parse(`{"event":"pusher:error","data":{"code":4009,"message":"no, \"}\""}}`),
		message{"pusher:error", "", `{"code":4009,"message":"no, \"}\""}`})
	// Any order, white space, fields it does not know (a client event's user_id), a number.
	is.Equal(parse(` { "channel" : "c", "user_id":"u1", "n": [1, {"x":"]"}], "event":"client-x" , "data":"{}"} `),
		message{"client-x", "c", "{}"})
	is.Equal(parse(`{}`), message{})
	// A message leaves nothing of the previous one behind.
	is.Equal(parse(`{"event":"pusher:pong","data":"{}"}`), message{"pusher:pong", "", "{}"})

	for _, bad := range []string{``, `[]`, `{"event"}`, `{"event":"x"`, `{"event":"x\q"}`, `{"event":"\u12"}`, `{"event":"x" "data":""}`, `{"data":{"a":1}`} {
		_, err := p.Parse([]byte(bad))
		is.True(err != nil) // malformed: refused
	}
}

func TestPusherParserDoesNotAllocateOnceWarm(t *testing.T) {
	frame := []byte(`{"event":"loadgen","data":"{\"id\":\"n1\",\"title\":\"lg-ab12cd-7\",\"message\":\"load test\"}","channel":"lg-ab12cd"}`)
	var p PusherParser
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := p.Parse(frame); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message", allocs)
	}
}

// FuzzPusherParserAgreesWithEncodingJSON: any event and data strings,
// encoded by encoding/json, come back as they were.
func FuzzPusherParserAgreesWithEncodingJSON(f *testing.F) {
	f.Add("loadgen", `{"title":"lg-ab12cd-7","message":"é \"q\" <b>"}`, "lg-ab12cd")
	f.Add("pusher:ping", "{}", "")
	f.Fuzz(func(t *testing.T, event, data, channel string) {
		if !utf8.ValidString(event) || !utf8.ValidString(data) || !utf8.ValidString(channel) {
			return // encoding/json would replace the bytes
		}
		frame, err := json.Marshal(map[string]string{"event": event, "data": data, "channel": channel})
		if err != nil {
			t.Fatal(err)
		}
		var p PusherParser
		m, err := p.Parse(frame)
		if err != nil {
			t.Fatalf("%s: %v", frame, err)
		}
		if string(m.Event) != event || string(m.Data) != data || string(m.Channel) != channel {
			t.Fatalf("%s: got %q %q %q", frame, m.Event, m.Data, m.Channel)
		}
	})
}
