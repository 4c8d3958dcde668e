package transport

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"notification-service/broker"
)

// Fuzz targets for the two parsers every client byte goes through: the
// WebSocket action frame and the REST notification body. Their seed
// corpora live in testdata/fuzz/<target>; a crash the fuzzer finds is kept
// there as a regression test.

const (
	fuzzMaxChannels = 5
	fuzzMaxDepth    = 8
)

// checkRefusal: a refusal is the API's error shape, for the client's
// fault.
func checkRefusal(t *testing.T, input []byte, e *apiError) {
	t.Helper()
	if e.Status != http.StatusBadRequest || e.Code == "" || e.Message == "" {
		t.Fatalf("input %q: refusal %+v is not a complete 400", input, e)
	}
	if !utf8.ValidString(e.Message) || !utf8.ValidString(e.Field) {
		t.Fatalf("input %q: refusal %+v is not valid UTF-8", input, e)
	}
}

// checkChannelList: channels are valid names, none twice, at most max.
func checkChannelList(t *testing.T, input []byte, channels []string, max int) {
	t.Helper()
	if len(channels) > max {
		t.Fatalf("input %q: %d channels accepted, max %d", input, len(channels), max)
	}
	seen := map[string]bool{}
	for _, ch := range channels {
		if !channelPattern.MatchString(ch) || seen[ch] {
			t.Fatalf("input %q: channel %q accepted (invalid or repeated) in %q", input, ch, channels)
		}
		seen[ch] = true
	}
}

func FuzzParseAction(f *testing.F) {
	for _, s := range []string{
		`{"action":"ping"}`,
		`{"action":"subscribe","channels":["tareas","finanzas","recordatorios"]}`,
		`{"action":"unsubscribe","channels":["finanzas","finanzas"]}`,
		`{"action":"subscribe","channels":["a","b","c","d","e","f"]}`,
		`{"action":"subscribe","channels":[]}`,
		`{"action":"subscribe","channels":["private-App.Models.User.1"]}`,
		`{"action":"subscribe","channels":["\ud83d\ude00"]}`,
		`{"action":"subscribe","channels":["\ud800"]}`,
		`{"ACTION":"ping","Channels":null}`,
		`{"action":"ping","x":[[[[[[[[[]]]]]]]]]}`,
		`{"action":"dance"}`,
		`{"action":"ping"} {}`,
		"{\"action\":\"p\xffng\"}",
		`[`, ``, `null`, `"ping"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, e := parseAction(data, fuzzMaxChannels, fuzzMaxDepth)
		if e != nil {
			checkRefusal(t, data, e)
			if !reflect.DeepEqual(a, wsAction{}) {
				t.Fatalf("input %q: refused but returned %+v", data, a)
			}
			return
		}
		if !utf8.Valid(data) || checkJSONText(data, fuzzMaxDepth) != nil {
			t.Fatalf("input %q: accepted invalid Unicode or nesting", data)
		}
		switch a.Action {
		case "ping":
			if a.Channels != nil {
				t.Fatalf("input %q: ping with channels %q", data, a.Channels)
			}
		case "subscribe", "unsubscribe":
			if len(a.Channels) == 0 {
				t.Fatalf("input %q: %s with no channel accepted", data, a.Action)
			}
			checkChannelList(t, data, a.Channels, fuzzMaxChannels)
		default:
			t.Fatalf("input %q: unknown action %q accepted", data, a.Action)
		}
	})
}

func FuzzDecodeNotification(f *testing.F) {
	for _, s := range []string{
		// The seed's curl body and what the seed's PHP client sends.
		`{"type":"tarea","title":"Nueva Tarea Asignada","message":"Se te ha asignado una tarea importante","user_id":"user123","channels":["tareas"],"data":{"task_id":"task456","priority":"high"}}`,
		`{"type":"info","title":"Nueva tarea \u00e1","message":"Revisa http:\/\/app.test\/tareas","user_id":"user123","data":[]}`,
		`{"title":"x","user_ids":[1,"2",2,"u-3"],"data":null}`,
		`{"message":"m","channels":["news","news"],"data":{"a":{"b":[1,2,{"c":"\u003c/script\u003e"}]}}}`,
		`{"title":"\ud83d\ude00","user_id":42,"data":{"e":"\uD83D\uDE00","s":"\\ud800"}}`,
		`{"title":"\ud800","user_id":"u"}`,
		`{"title":"x","user_id":"u","data":{"k":"\udc00"}}`,
		`{"title":"x","user_id":"u","data":{"a":[[[[[[[[[[]]]]]]]]]]}}`,
		`{"title":"x","user_id":"u","data":{"s":"[[[[[[[[[[[[[[[[[[[["}}`,
		`{"title":"x","user_id":"u","data":{"\ufffd":"\ufffd"}}`,
		`{"title":"a\u0000b","user_id":"u"}`,
		`{"title":"x","user_id":1e3}`,
		`{"title":"x","user_id":"u","scheduled_at":"2030-01-01T00:00:00Z"}`,
		`{"title":"x","user_id":"u","Title":"y"}`,
		"{\"title\":\"\xff\",\"user_id\":\"u\"}",
		"{\"title\":\"x\",\"user_id\":\"u\",\"data\":{\"\xc0\xaf\":1}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req notificationRequest
		e := decodeJSON(body, &req, fuzzMaxDepth)
		var ns []broker.Notification
		if e == nil {
			ns, e = req.toNotifications("0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", fuzzMaxChannels)
		}
		if e != nil {
			checkRefusal(t, body, e)
			if ns != nil {
				t.Fatalf("input %q: refused but built %v", body, ns)
			}
			return
		}
		if !utf8.Valid(body) || checkJSONText(body, fuzzMaxDepth) != nil {
			t.Fatalf("input %q: accepted invalid Unicode or nesting", body)
		}
		// Nothing was silently replaced: every U+FFFD in the result was in
		// the body, as is or escaped.
		sent := strings.Count(string(body), "\uFFFD") + strings.Count(strings.ToLower(string(body)), `\ufffd`)
		if got := strings.Count(req.Type+req.Title+req.Message, "\uFFFD"); got > sent {
			t.Fatalf("input %q: %d U+FFFD decoded, %d sent", body, got, sent)
		}
		if len(ns) == 0 {
			t.Fatalf("input %q: accepted but built nothing", body)
		}
		users := map[string]bool{}
		for _, n := range ns {
			checkAcceptedNotification(t, body, n, ns[0])
			if n.UserID != "" {
				if users[n.UserID] {
					t.Fatalf("input %q: user %q addressed twice", body, n.UserID)
				}
				users[n.UserID] = true
			}
		}
		if len(ns) > 1 && len(users) != len(ns) {
			t.Fatalf("input %q: a batch with a broadcast in it: %v", body, ns)
		}
		if len(users) > maxBatchUsers {
			t.Fatalf("input %q: %d users accepted", body, len(users))
		}
	})
}

// checkAcceptedNotification holds an accepted notification to the rules of
// send, and to a round trip through the JSON every client receives.
func checkAcceptedNotification(t *testing.T, body []byte, n, first broker.Notification) {
	t.Helper()
	if n.ID != first.ID || n.Type != first.Type || n.Title != first.Title || n.Message != first.Message ||
		!slices.Equal(n.Channels, first.Channels) || !bytes.Equal(n.Data, first.Data) {
		t.Fatalf("input %q: a batch whose notifications differ beyond the user: %+v vs %+v", body, n, first)
	}
	if n.Type == "" || checkText("type", n.Type, broker.MaxTypeLen) != nil {
		t.Fatalf("input %q: type %q accepted", body, n.Type)
	}
	if n.Title == "" && n.Message == "" {
		t.Fatalf("input %q: neither title nor message", body)
	}
	if checkText("title", n.Title, broker.MaxTitleLen) != nil || !utf8.ValidString(n.Message) {
		t.Fatalf("input %q: title %q or message %q accepted", body, n.Title, n.Message)
	}
	if n.UserID != "" && !idPattern.MatchString(n.UserID) {
		t.Fatalf("input %q: user id %q accepted", body, n.UserID)
	}
	if n.UserID == "" && len(n.Channels) == 0 {
		t.Fatalf("input %q: addressed to nobody", body)
	}
	checkChannelList(t, body, n.Channels, fuzzMaxChannels)
	if n.Data != nil {
		if len(n.Data) < 2 || n.Data[0] != '{' || !json.Valid(n.Data) || checkJSONText(n.Data, fuzzMaxDepth) != nil {
			t.Fatalf("input %q: data %q accepted", body, n.Data)
		}
		if bytes.Equal(n.Data, []byte("{}")) {
			t.Fatalf("input %q: empty data kept as {} rather than dropped", body)
		}
	}

	frame, err := broker.NotificationFrame(n, "e1")
	if err != nil {
		t.Fatalf("input %q: accepted but cannot encode: %v", body, err)
	}
	if !utf8.Valid(frame.JSON) || !json.Valid(frame.JSON) {
		t.Fatalf("input %q: encodes to invalid JSON or UTF-8: %q", body, frame.JSON)
	}
	var back broker.Notification
	if err := json.Unmarshal(frame.JSON, &back); err != nil {
		t.Fatalf("input %q: its frame does not decode: %v", body, err)
	}
	if back.ID != n.ID || back.Type != n.Type || back.Title != n.Title || back.Message != n.Message ||
		back.UserID != n.UserID || !slices.Equal(back.Channels, n.Channels) {
		t.Fatalf("input %q: does not survive a round trip: %+v became %+v", body, n, back)
	}
	if n.Data != nil {
		var want, got any
		if json.Unmarshal(n.Data, &want) != nil || json.Unmarshal(back.Data, &got) != nil || !reflect.DeepEqual(want, got) {
			t.Fatalf("input %q: data %s came back as %s", body, n.Data, back.Data)
		}
	}
}
