package pusher_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/pusher"
)

// Byte-exact frames, in Pusher's field order ({"event","data","channel"},
// as captured from Pusher's service) and double encoding.
func TestEncodersAreByteExact(t *testing.T) {
	ana := pusher.Member{UserID: "1", Info: json.RawMessage(`{"name":"Ana"}`)}
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"connection established", pusher.AppendConnectionEstablished(nil, "445294.25458239", 120*time.Second),
			`{"event":"pusher:connection_established","data":"{\"socket_id\":\"445294.25458239\",\"activity_timeout\":120}"}`},
		{"connection established, a timeout in whole seconds", pusher.AppendConnectionEstablished(nil, "1.2", 30900*time.Millisecond),
			`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":30}"}`},
		{"connection established, at least a second", pusher.AppendConnectionEstablished(nil, "1.2", 0),
			`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":1}"}`},
		{"ping", pusher.AppendPing(nil), `{"event":"pusher:ping","data":"{}"}`},
		{"pong", pusher.AppendPong(nil), `{"event":"pusher:pong","data":"{}"}`},
		{"error with a code", pusher.AppendError(nil, pusher.CodeUnauthorized, "Connection is unauthorized"),
			`{"event":"pusher:error","data":{"code":4009,"message":"Connection is unauthorized"}}`},
		{"error without a code", pusher.AppendError(nil, pusher.NoCode, "Existing subscription to channel presence-channel"),
			`{"event":"pusher:error","data":{"code":null,"message":"Existing subscription to channel presence-channel"}}`},
		{"error message escaped", pusher.AppendError(nil, pusher.CodeClientEventRateLimit, `"a"\b`),
			`{"event":"pusher:error","data":{"code":4301,"message":"\"a\"\\b"}}`},
		{"subscription succeeded", pusher.AppendSubscriptionSucceeded(nil, "tareas"),
			`{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"tareas"}`},
		{"presence subscription succeeded", pusher.AppendPresenceSubscriptionSucceeded(nil, "presence-room.1", []pusher.Member{ana, {UserID: "u2"}}),
			`{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"ids\":[\"1\",\"u2\"],\"hash\":{\"1\":{\"name\":\"Ana\"},\"u2\":null},\"count\":2}}","channel":"presence-room.1"}`},
		{"presence with nobody", pusher.AppendPresenceSubscriptionSucceeded(nil, "presence-x", nil),
			`{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"ids\":[],\"hash\":{},\"count\":0}}","channel":"presence-x"}`},
		{"presence counts a user once", pusher.AppendPresenceSubscriptionSucceeded(nil, "presence-x", []pusher.Member{ana, {UserID: "1", Info: json.RawMessage(`{"name":"tab 2"}`)}}),
			`{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"ids\":[\"1\"],\"hash\":{\"1\":{\"name\":\"Ana\"}},\"count\":1}}","channel":"presence-x"}`},
		{"member added", pusher.AppendMemberAdded(nil, "presence-room.1", ana),
			`{"event":"pusher_internal:member_added","data":"{\"user_id\":\"1\",\"user_info\":{\"name\":\"Ana\"}}","channel":"presence-room.1"}`},
		{"member added without info", pusher.AppendMemberAdded(nil, "presence-room.1", pusher.Member{UserID: "7"}),
			`{"event":"pusher_internal:member_added","data":"{\"user_id\":\"7\"}","channel":"presence-room.1"}`},
		{"member added, info that is not JSON", pusher.AppendMemberAdded(nil, "presence-x", pusher.Member{UserID: "7", Info: json.RawMessage(`{oops`)}),
			`{"event":"pusher_internal:member_added","data":"{\"user_id\":\"7\",\"user_info\":null}","channel":"presence-x"}`},
		{"member removed", pusher.AppendMemberRemoved(nil, "presence-room.1", "1"),
			`{"event":"pusher_internal:member_removed","data":"{\"user_id\":\"1\"}","channel":"presence-room.1"}`},
		{"member removed, an id needing escapes", pusher.AppendMemberRemoved(nil, "presence-x", `a"b\c`),
			`{"event":"pusher_internal:member_removed","data":"{\"user_id\":\"a\\\"b\\\\c\"}","channel":"presence-x"}`},
		{"event: Pusher's documented one", pusher.AppendEvent(nil, "foo", "project-3", []byte(`{"some":"data"}`)),
			`{"event":"foo","data":"{\"some\":\"data\"}","channel":"project-3"}`},
		{"event: Laravel's empty payload", pusher.AppendEvent(nil, "tarea.creada", "tareas", []byte("[]")),
			`{"event":"tarea.creada","data":"[]","channel":"tareas"}`},
		{"event: a class name", pusher.AppendEvent(nil, `App\Events\TareaCreada`, "tareas", []byte(`{}`)),
			`{"event":"App\\Events\\TareaCreada","data":"{}","channel":"tareas"}`},
		{"client event on a presence channel", pusher.AppendClientEvent(nil, "client-typing", "presence-room.1", []byte(`{"t":1}`), "1"),
			`{"event":"client-typing","data":"{\"t\":1}","channel":"presence-room.1","user_id":"1"}`},
		{"client event on a private channel", pusher.AppendClientEvent(nil, "client-typing", "private-chat.1", []byte(`{"t":1}`), ""),
			`{"event":"client-typing","data":"{\"t\":1}","channel":"private-chat.1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(string(tc.got), tc.want)
			is.True(json.Valid(tc.got))
		})
	}
}

func TestAppendErrorFor(t *testing.T) {
	is := is.New(t)
	_, err := pusher.ParseClientMessage([]byte(`{"event":"pusher:subscribe","data":{"channel":"a b"}}`), 0)
	got := string(pusher.AppendErrorFor(nil, fmt.Errorf("ws: %w", err))) // found through wrapping
	is.True(strings.HasPrefix(got, `{"event":"pusher:error","data":{"code":null,"message":"\"a b\" is not a valid channel name`))
	err = pusher.VerifyChannelAuth(docApp, "1.1", "private-x", "", "")
	is.True(strings.HasPrefix(string(pusher.AppendErrorFor(nil, err)), `{"event":"pusher:error","data":{"code":4009,"message":`))
	// Any other error stays inside: its text could hold anything.
	is.Equal(string(pusher.AppendErrorFor(nil, errors.New("redis: dial tcp 10.0.0.3:6379: secret-host"))),
		`{"event":"pusher:error","data":{"code":null,"message":"internal error"}}`)
}

// Data, names and ids the encoders escape come back unchanged through a
// JSON decoder, as pusher-js reads them: the data string, then its JSON.
func TestEncodersRoundTrip(t *testing.T) {
	for _, s := range []string{
		`{"text":"plain"}`, `{"q":"\"quoted\"","b":"back\\slash"}`, `"a JSON string"`,
		`{"u":"é ü 日本語 🎉","esc":"\u00e9"}`, `{"html":"</script><script>alert(1)</script>"}`,
		"{\"ctl\":\"\\u0000\\n\\t\"}", "raw control \x01\x1f and \u2028\u2029", "not json at all",
		strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20),
	} {
		is := is.New(t)
		frame := pusher.AppendEvent([]byte("prefix"), `client-"x"`, "private-c;1", []byte(s))
		is.True(strings.HasPrefix(string(frame), "prefix"))
		var got struct{ Event, Channel, Data string }
		is.NoErr(json.Unmarshal(frame[len("prefix"):], &got))
		is.Equal(got.Event, `client-"x"`)
		is.Equal(got.Channel, "private-c;1")
		is.Equal(got.Data, s)

		m := pusher.Member{UserID: s, Info: json.RawMessage(`{"name":` + string(mustJSON(s)) + `}`)}
		var presence struct{ Data string }
		is.NoErr(json.Unmarshal(pusher.AppendPresenceSubscriptionSucceeded(nil, "presence-x", []pusher.Member{m}), &presence))
		var inner struct {
			Presence struct {
				IDs   []string                   `json:"ids"`
				Hash  map[string]json.RawMessage `json:"hash"`
				Count int                        `json:"count"`
			} `json:"presence"`
		}
		is.NoErr(json.Unmarshal([]byte(presence.Data), &inner))
		is.Equal(inner.Presence.IDs, []string{s})
		is.Equal(inner.Presence.Count, 1)
		var info struct{ Name string }
		is.NoErr(json.Unmarshal(inner.Presence.Hash[s], &info))
		is.Equal(info.Name, s)
	}
}

// A client event goes from a pusher-js frame to the frame other
// subscribers receive, and pusher-js (which JSON-parses a string data)
// gets the object the sender sent.
func TestClientEventRelayRoundTrip(t *testing.T) {
	is := is.New(t)
	m, err := pusher.ParseClientMessage([]byte(`{"event":"client-typing","data":{"name":"Ana \"A\" </script>","n":[1,2]},"channel":"presence-room.1"}`), 0)
	is.NoErr(err)
	frame := pusher.AppendClientEvent(nil, m.Event, m.Channel, m.Data, "42")
	var got struct {
		Event, Channel, Data string
		UserID               string `json:"user_id"`
	}
	is.NoErr(json.Unmarshal(frame, &got))
	is.Equal(got.UserID, "42")
	var data struct {
		Name string
		N    []int
	}
	is.NoErr(json.Unmarshal([]byte(got.Data), &data))
	is.Equal(data.Name, `Ana "A" </script>`)
	is.Equal(data.N, []int{1, 2})
}

// Invalid UTF-8 from any argument never reaches a client: the frame stays
// valid JSON and valid UTF-8.
func TestEncodersRepairInvalidUTF8(t *testing.T) {
	is := is.New(t)
	bad := "x\xff\xfe"
	for _, frame := range [][]byte{
		pusher.AppendEvent(nil, bad, bad, []byte(bad)),
		pusher.AppendClientEvent(nil, bad, bad, []byte(bad), bad),
		pusher.AppendError(nil, pusher.NoCode, bad),
		pusher.AppendMemberAdded(nil, bad, pusher.Member{UserID: bad, Info: json.RawMessage(`"` + bad + `"`)}),
		pusher.AppendMemberRemoved(nil, bad, bad),
		pusher.AppendPresenceSubscriptionSucceeded(nil, bad, []pusher.Member{{UserID: bad}}),
		pusher.AppendConnectionEstablished(nil, bad, time.Second),
		pusher.AppendSubscriptionSucceeded(nil, bad),
	} {
		is.True(json.Valid(frame))
		is.True(!strings.Contains(string(frame), "\xff"))
	}
}

// The hot path: encoding into a reused buffer allocates nothing.
func TestEncodersDoNotAllocate(t *testing.T) {
	is := is.New(t)
	buf := make([]byte, 0, 1024)
	data := []byte(`{"id":"01a2","title":"Nueva \"tarea\"","u":"é"}`)
	for name, f := range map[string]func(){
		"event":        func() { buf = pusher.AppendEvent(buf[:0], "tarea.creada", "tareas", data) },
		"client event": func() { buf = pusher.AppendClientEvent(buf[:0], "client-t", "presence-r", data, "7") },
		"established":  func() { buf = pusher.AppendConnectionEstablished(buf[:0], "123.456", 120*time.Second) },
		"error":        func() { buf = pusher.AppendError(buf[:0], pusher.CodePongTimeout, "Pong reply not received") },
		"removed":      func() { buf = pusher.AppendMemberRemoved(buf[:0], "presence-r", "7") },
		"pong":         func() { buf = pusher.AppendPong(buf[:0]) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
	is.True(len(buf) > 0)
}

func mustJSON(s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkAppendEvent(b *testing.B) {
	data := []byte(`{"id":"01a21b0c-9280-75d5-9a8a-3d51e30c827d","type":"tarea","title":"Nueva Tarea Asignada","message":"Se te ha asignado una tarea importante","data":{"task_id":"task456","priority":"high"}}`)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		buf = pusher.AppendEvent(buf[:0], "tarea.creada", "private-App.Models.User.42", data)
	}
}

func TestPresenceSubscriptionSucceededManyMembers(t *testing.T) {
	is := is.New(t)
	var members []pusher.Member
	for i := range 100 {
		members = append(members, pusher.Member{UserID: fmt.Sprint(i)})
	}
	members = append(members, pusher.Member{UserID: "5", Info: json.RawMessage(`{"tab":2}`)}, pusher.Member{UserID: "99"})
	var frame struct{ Data string }
	is.NoErr(json.Unmarshal(pusher.AppendPresenceSubscriptionSucceeded(nil, "presence-big", members), &frame))
	var inner struct {
		Presence struct {
			IDs   []string                   `json:"ids"`
			Hash  map[string]json.RawMessage `json:"hash"`
			Count int                        `json:"count"`
		} `json:"presence"`
	}
	is.NoErr(json.Unmarshal([]byte(frame.Data), &inner))
	is.Equal(inner.Presence.Count, 100)
	is.Equal(len(inner.Presence.IDs), 100)
	is.Equal(len(inner.Presence.Hash), 100)
	is.Equal(inner.Presence.IDs[99], "99")
	is.Equal(string(inner.Presence.Hash["5"]), "null") // the first connection's info is kept
}
