package pusher_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"notification-service/pusher"
)

// Seeds beyond the corpus in testdata/fuzz: the frames pusher-js sends and
// the shapes that broke parsers before.
var clientFrameSeeds = []string{
	`{"event":"pusher:ping","data":{}}`,
	`{"event":"pusher:subscribe","data":{"auth":"","channel":"tareas"}}`,
	`{"event":"pusher:subscribe","data":{"auth":"` + docPresenceAuth + `","channel_data":"{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Pusher\"}}","channel":"presence-foobar"}}`,
	`{"event":"pusher:subscribe","data":"{\"channel\":\"x\"}"}`,
	`{"event":"pusher:unsubscribe","data":{"channel":"private-a"}}`,
	`{"event":"client-typing","data":{"name":"Ana"},"channel":"private-chat.1"}`,
	`{"event":"client-x","data":"\u2028\"</script>","channel":"presence-r"}`,
	`{"event":"client-x","data":"\ud83c\udf89","channel":"presence-r"}`,
	`{"event":"client-x","data":"\ud800","channel":"presence-r"}`,
	`{"event":"pusher:subscribe","data":{"channel":"presence-x","channel_data":"{\"user_id\":-1e999}"}}`,
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	"{\"event\":\"client-\xff\",\"channel\":\"private-c\"}",
	`{"event":"pusher:subscribe","data":{"channel":"a b"}}`,
	``, `null`, `{}`, `{"event":null}`,
}

func FuzzParseClientMessage(f *testing.F) {
	for _, s := range clientFrameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := pusher.ParseClientMessage(frame, 4096)
		if err != nil {
			var pe *pusher.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ProtocolError", err, err)
			}
			if !errors.Is(err, pusher.ErrFrameTooLarge) && !errors.Is(err, pusher.ErrMalformedFrame) && !errors.Is(err, pusher.ErrInvalidChannel) {
				t.Fatalf("error %v wraps no frame sentinel", err)
			}
			if !utf8.ValidString(pe.Message) || len(pe.Message) > 400 {
				t.Fatalf("message %q: invalid UTF-8 or too long", pe.Message)
			}
			if m.Event != "" || m.Channel != "" || m.Data != nil {
				t.Fatalf("a refused frame returned %+v", m)
			}
			if !json.Valid(pusher.AppendErrorFor(nil, err)) {
				t.Fatalf("the pusher:error for %v is not valid JSON", err)
			}
			return
		}
		if len(frame) > 4096 || m.Event == "" || !utf8.ValidString(m.Event) || utf8.RuneCountInString(m.Event) > pusher.MaxEventNameLength {
			t.Fatalf("accepted %q as event %q", frame, m.Event)
		}
		switch m.Kind {
		case pusher.MessageSubscribe, pusher.MessageUnsubscribe, pusher.MessageClientEvent:
			if !pusher.ValidChannelName(m.Channel) {
				t.Fatalf("accepted channel %q", m.Channel)
			}
		default:
			if m.Channel != "" || m.Data != nil {
				t.Fatalf("a %s message carries %+v", m.Kind, m)
			}
		}
		if m.Kind == pusher.MessageClientEvent {
			if !pusher.IsClientEvent(m.Event) || !utf8.Valid(m.Data) {
				t.Fatalf("client event %q with data %q", m.Event, m.Data)
			}
			// The relayed frame is valid JSON and carries the data string unchanged.
			out := pusher.AppendClientEvent(nil, m.Event, m.Channel, m.Data, "u")
			var back struct{ Event, Channel, Data string }
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("relay of %q is not JSON: %v\n%s", frame, err, out)
			}
			if back.Event != m.Event || back.Channel != m.Channel || back.Data != string(m.Data) {
				t.Fatalf("relay round trip: %+v != %+v", back, m)
			}
		}
		if m.Kind == pusher.MessageSubscribe && m.ChannelData != "" {
			member, err := pusher.ParseChannelData(m.ChannelData, 0)
			if err != nil {
				if !errors.Is(err, pusher.ErrInvalidChannelData) {
					t.Fatalf("channel_data error %v wraps no sentinel", err)
				}
				return
			}
			if member.UserID == "" || utf8.RuneCountInString(member.UserID) > pusher.MaxUserIDLength {
				t.Fatalf("accepted user_id %q", member.UserID)
			}
			for _, out := range [][]byte{
				pusher.AppendMemberAdded(nil, m.Channel, member),
				pusher.AppendPresenceSubscriptionSucceeded(nil, m.Channel, []pusher.Member{member, member}),
				pusher.AppendMemberRemoved(nil, m.Channel, member.UserID),
			} {
				var outer struct{ Data string }
				if json.Unmarshal(out, &outer) != nil || !json.Valid([]byte(outer.Data)) {
					t.Fatalf("presence frame for %+v is not valid double-encoded JSON:\n%s", member, out)
				}
			}
		}
	})
}

var eventBodySeeds = []string{
	string(docBody),
	`{"name":"tarea.creada","data":"{\"id\":1}","channel":"tareas"}`,
	`{"name":"App\\Events\\X","data":"[]","channels":["a","private-b","a"],"socket_id":"1.2","info":"user_count"}`,
	`{"batch":[{"channel":"c","name":"e","data":"x"},{"channel":"d","name":"f","data":"{}","socket_id":"3.4"}]}`,
	`{"batch":[{"channels":["c"],"name":"e","data":"x"}]}`,
	`{"name":"e","data":{"a":1},"channel":"c"}`,
	`{"name":"pusher_internal:member_added","data":"x","channel":"c"}`,
	`{"name":"e","data":"x","channel":"c","channels":["d"]}`,
	`{"name":"e","data":"\ud800","channel":"c"}`,
	`{"name":"e","data":"x","channels":[null,1,"ok"]}`,
	"{\"name\":\"\xff\",\"data\":\"x\",\"channel\":\"c\"}",
	`{"name":"e","data":"x","channel":"c"}{}`,
	``, `[]`, `null`, `{"batch":null}`,
}

func FuzzParseEvent(f *testing.F) {
	for _, s := range eventBodySeeds {
		f.Add([]byte(s))
	}
	lim := pusher.EventLimits{MaxDataBytes: 512, MaxChannels: 5, MaxBatch: 3}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := pusher.ParseEvent(body, lim)
		checkAPIError(t, err)
		if err == nil {
			checkEvent(t, ev, lim)
		}
		evs, err := pusher.ParseBatch(body, lim)
		checkAPIError(t, err)
		if err != nil {
			if evs != nil {
				t.Fatalf("a refused batch returned %d events", len(evs))
			}
			return
		}
		if len(evs) == 0 || len(evs) > lim.MaxBatch {
			t.Fatalf("accepted a batch of %d", len(evs))
		}
		for _, ev := range evs {
			checkEvent(t, ev, lim)
			if len(ev.Channels) != 1 {
				t.Fatalf("a batch event on %d channels", len(ev.Channels))
			}
		}
	})
}

func checkAPIError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *pusher.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	want := map[error]int{pusher.ErrMalformedBody: 400, pusher.ErrBadValue: 400, pusher.ErrInvalidField: 422, pusher.ErrTooLarge: 413}[ae.Err]
	if want == 0 || ae.Status != want {
		t.Fatalf("error %v: status %d for %v", err, ae.Status, ae.Err)
	}
	if (ae.Err == pusher.ErrMalformedBody) != (ae.Field == "") {
		t.Fatalf("error %v: field %q", err, ae.Field)
	}
	if !utf8.ValidString(ae.Message) || len(ae.Message) > 400 {
		t.Fatalf("message %q: invalid UTF-8 or too long", ae.Message)
	}
}

func checkEvent(t *testing.T, ev pusher.Event, lim pusher.EventLimits) {
	t.Helper()
	if ev.Name == "" || utf8.RuneCountInString(ev.Name) > pusher.MaxEventNameLength || !utf8.ValidString(ev.Name) {
		t.Fatalf("accepted name %q", ev.Name)
	}
	if ev.Data == "" || len(ev.Data) > lim.MaxDataBytes || !utf8.ValidString(ev.Data) {
		t.Fatalf("accepted data of %d bytes", len(ev.Data))
	}
	if len(ev.Channels) == 0 || len(ev.Channels) > lim.MaxChannels {
		t.Fatalf("accepted %d channels", len(ev.Channels))
	}
	seen := map[string]bool{}
	for _, c := range ev.Channels {
		if !pusher.ValidChannelName(c) || seen[c] {
			t.Fatalf("accepted channels %q", ev.Channels)
		}
		seen[c] = true
	}
	if ev.SocketID != "" && !pusher.ValidSocketID(ev.SocketID) {
		t.Fatalf("accepted socket_id %q", ev.SocketID)
	}
	out := pusher.AppendEvent(nil, ev.Name, ev.Channels[0], []byte(ev.Data))
	var back struct{ Event, Channel, Data string }
	if err := json.Unmarshal(out, &back); err != nil || back.Event != ev.Name || back.Channel != ev.Channels[0] || back.Data != ev.Data {
		t.Fatalf("event %+v does not survive AppendEvent: %v\n%s", ev, err, out)
	}
}

// FuzzVerifyRequest: the query string and body of an HTTP API request are
// the caller's. VerifyRequest never panics, refuses with 400 or 401 and a
// message holding no secret, and accepts whatever Sign signed.
func FuzzVerifyRequest(f *testing.F) {
	f.Add(docQuery, docBody)
	f.Add("info=user_count%2Csubscription_count&Filter_By_Prefix=presence-", []byte(nil))
	f.Add("channels[]=b&channels[]=a&x=%zz", []byte("{}"))
	f.Add("a=1&A=2;b=3", []byte("x"))
	f.Add("\u212a=1&k=2", []byte(nil)) // the Kelvin sign lowercases to k
	now := time.Unix(docTimestamp, 0)
	f.Fuzz(func(t *testing.T, query string, body []byte) {
		r := pusher.APIRequest{Method: "POST", Path: "/apps/3/events", RawQuery: query, Body: body}
		if err := pusher.VerifyRequest(docApp, r, now, 0); err != nil {
			var ae *pusher.APIError
			if !errors.As(err, &ae) || (ae.Status != 400 && ae.Status != 401) {
				t.Fatalf("error %v (%T)", err, err)
			}
			if !utf8.ValidString(ae.Message) || strings.Contains(ae.Message, docApp.Secret) {
				t.Fatalf("message %q", ae.Message)
			}
		}
		signed, err := pusher.Sign(docApp, r, now)
		if err != nil {
			return
		}
		r.RawQuery = signed
		if err := pusher.VerifyRequest(docApp, r, now, 0); err != nil {
			var ae *pusher.APIError
			if errors.As(err, &ae) && ae.Status == 400 {
				return // a query Sign encodes but Verify refuses as ambiguous (two spellings of one name)
			}
			t.Fatalf("Sign(%q) = %q, which VerifyRequest refuses: %v", query, signed, err)
		}
	})
}
