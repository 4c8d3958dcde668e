package pusher_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/pusher"
)

// Bodies exactly as Laravel's broadcaster sends them through pusher-http-php
// (7.x make_event: one channel as "channel", several as "channels", data
// already JSON-encoded, json_encode's \u escapes and \/).
func TestParseEventLaravelBodies(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want pusher.Event
	}{
		{"one channel", `{"name":"tarea.creada","data":"{\"tarea\":{\"id\":1,\"titulo\":\"Revisi\u00f3n\"},\"url\":\"https:\/\/x\/1\"}","channel":"tareas"}`,
			pusher.Event{Name: "tarea.creada", Channels: []string{"tareas"}, Data: `{"tarea":{"id":1,"titulo":"Revisión"},"url":"https://x/1"}`}},
		{"several channels and toOthers", `{"name":"App\\Events\\TareaCreada","data":"{\"id\":7}","channels":["tareas","private-App.Models.User.42"],"socket_id":"123.456"}`,
			pusher.Event{Name: `App\Events\TareaCreada`, Channels: []string{"tareas", "private-App.Models.User.42"}, Data: `{"id":7}`, SocketID: "123.456"}},
		{"Laravel's empty payload", `{"name":"ping","data":"[]","channel":"tareas"}`,
			pusher.Event{Name: "ping", Channels: []string{"tareas"}, Data: "[]"}},
		{"a broadcast notification", `{"name":"Illuminate\\Notifications\\Events\\BroadcastNotificationCreated","data":"{\"id\":\"9b1d\",\"type\":\"App\\\\Notifications\\\\Paid\",\"amount\":5}","channel":"private-App.Models.User.1"}`,
			pusher.Event{Name: `Illuminate\Notifications\Events\BroadcastNotificationCreated`, Channels: []string{"private-App.Models.User.1"}, Data: `{"id":"9b1d","type":"App\\Notifications\\Paid","amount":5}`}},
		{"Pusher's documented body", string(docBody),
			pusher.Event{Name: "foo", Channels: []string{"project-3"}, Data: `{"some":"data"}`}},
		{"info, unknown fields ignored, null socket_id", `{"name":"e","data":"x","channel":"c","info":"user_count,subscription_count","socket_id":null,"extra":{"a":[1]}}`,
			pusher.Event{Name: "e", Channels: []string{"c"}, Data: "x", Info: "user_count,subscription_count"}},
		{"a repeated channel counts once", `{"name":"e","data":"x","channels":["a","b","a"]}`,
			pusher.Event{Name: "e", Channels: []string{"a", "b"}, Data: "x"}},
		{"an encrypted channel's ciphertext is opaque", `{"name":"e","data":"{\"nonce\":\"bm9uY2U=\",\"ciphertext\":\"Y2lwaGVy\"}","channel":"private-encrypted-x"}`,
			pusher.Event{Name: "e", Channels: []string{"private-encrypted-x"}, Data: `{"nonce":"bm9uY2U=","ciphertext":"Y2lwaGVy"}`}},
		{"a client- name from the server", `{"name":"client-x","data":"x","channel":"private-c"}`,
			pusher.Event{Name: "client-x", Channels: []string{"private-c"}, Data: "x"}},
		{"white space around the object", " \n{\"name\":\"e\",\"data\":\"x\",\"channel\":\"c\"}\n ",
			pusher.Event{Name: "e", Channels: []string{"c"}, Data: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ev, err := pusher.ParseEvent([]byte(tc.body), pusher.EventLimits{})
			is.NoErr(err)
			is.Equal(ev.Name, tc.want.Name)
			is.Equal(ev.Channels, tc.want.Channels)
			is.Equal(ev.Data, tc.want.Data)
			is.Equal(ev.SocketID, tc.want.SocketID)
			is.Equal(ev.Info, tc.want.Info)
		})
	}
}

func TestParseEventBounds(t *testing.T) {
	is := is.New(t)
	body := func(name, data string, channels []string) []byte {
		b, err := json.Marshal(map[string]any{"name": name, "data": data, "channels": channels})
		is.NoErr(err)
		return b
	}
	hundred := make([]string, 100)
	for i := range hundred {
		hundred[i] = fmt.Sprintf("c%d", i)
	}
	ev, err := pusher.ParseEvent(body(strings.Repeat("é", 200), strings.Repeat("x", 10*1024), hundred), pusher.EventLimits{})
	is.NoErr(err) // 200 characters (400 bytes), 10 KiB of data, 100 channels: all at the limit
	is.Equal(len(ev.Channels), 100)

	_, err = pusher.ParseEvent(body("e", strings.Repeat("x", 101), []string{"c"}), pusher.EventLimits{MaxDataBytes: 100})
	is.True(errors.Is(err, pusher.ErrTooLarge))
	_, err = pusher.ParseEvent(body("e", "x", []string{"a", "b", "c"}), pusher.EventLimits{MaxChannels: 2})
	is.True(errors.Is(err, pusher.ErrBadValue))
}

func TestParseEventRefusals(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprintf("c%d", i))
	}
	for _, tc := range []struct {
		name   string
		body   string
		status int
		reason error
		field  string
	}{
		{"an empty body", ``, 400, pusher.ErrMalformedBody, ""},
		{"white space", " \n\t", 400, pusher.ErrMalformedBody, ""},
		{"invalid JSON", `{"name":"e",`, 400, pusher.ErrMalformedBody, ""},
		{"an array", `[{"name":"e","data":"x","channel":"c"}]`, 400, pusher.ErrMalformedBody, ""},
		{"null", `null`, 400, pusher.ErrMalformedBody, ""},
		{"a string", `"event"`, 400, pusher.ErrMalformedBody, ""},
		{"two objects", `{"name":"e","data":"x","channel":"c"}{}`, 400, pusher.ErrMalformedBody, ""},
		{"invalid UTF-8", "{\"name\":\"e\xff\",\"data\":\"x\",\"channel\":\"c\"}", 400, pusher.ErrMalformedBody, ""},
		{"an unpaired surrogate", `{"name":"e","data":"\ud800","channel":"c"}`, 400, pusher.ErrMalformedBody, ""},
		{"nesting past the bound", `{"name":"e","data":"x","channel":"c","x":[[[[[[[[[]]]]]]]]]}`, 400, pusher.ErrMalformedBody, ""},

		{"no name", `{"data":"x","channel":"c"}`, 422, pusher.ErrInvalidField, "name"},
		{"an empty name", `{"name":"","data":"x","channel":"c"}`, 422, pusher.ErrInvalidField, "name"},
		{"a null name", `{"name":null,"data":"x","channel":"c"}`, 422, pusher.ErrInvalidField, "name"},
		{"a number for a name", `{"name":5,"data":"x","channel":"c"}`, 422, pusher.ErrInvalidField, "name"},
		{"a name in capitals is not name", `{"Name":"e","data":"x","channel":"c"}`, 422, pusher.ErrInvalidField, "name"},
		{"a name of 201 characters", `{"name":"` + strings.Repeat("é", 201) + `","data":"x","channel":"c"}`, 400, pusher.ErrBadValue, "name"},
		{"a pusher: name", `{"name":"pusher:error","data":"x","channel":"c"}`, 400, pusher.ErrBadValue, "name"},
		{"a pusher_internal: name", `{"name":"pusher_internal:member_added","data":"{\"user_id\":\"1\"}","channel":"presence-c"}`, 400, pusher.ErrBadValue, "name"},

		{"no data", `{"name":"e","channel":"c"}`, 422, pusher.ErrInvalidField, "data"},
		{"empty data", `{"name":"e","data":"","channel":"c"}`, 422, pusher.ErrInvalidField, "data"},
		{"data as an object", `{"name":"e","data":{"some":"data"},"channel":"c"}`, 422, pusher.ErrInvalidField, "data"},
		{"data as an array", `{"name":"e","data":[],"channel":"c"}`, 422, pusher.ErrInvalidField, "data"},
		{"data as a number", `{"name":"e","data":1,"channel":"c"}`, 422, pusher.ErrInvalidField, "data"},
		{"data as true", `{"name":"e","data":true,"channel":"c"}`, 422, pusher.ErrInvalidField, "data"},
		{"data over 10 KiB", `{"name":"e","data":"` + strings.Repeat("x", 10*1024+1) + `","channel":"c"}`, 413, pusher.ErrTooLarge, "data"},

		{"no channel", `{"name":"e","data":"x"}`, 422, pusher.ErrInvalidField, "channels"},
		{"channel and channels", `{"name":"e","data":"x","channel":"a","channels":["b"]}`, 422, pusher.ErrInvalidField, "channel"},
		{"channels as a string", `{"name":"e","data":"x","channels":"a"}`, 422, pusher.ErrInvalidField, "channels"},
		{"channels as an object", `{"name":"e","data":"x","channels":{"0":"a"}}`, 422, pusher.ErrInvalidField, "channels"},
		{"no channels", `{"name":"e","data":"x","channels":[]}`, 422, pusher.ErrInvalidField, "channels"},
		{"a number in channels", `{"name":"e","data":"x","channels":["a",1]}`, 422, pusher.ErrInvalidField, "channels.1"},
		{"null in channels", `{"name":"e","data":"x","channels":[null]}`, 422, pusher.ErrInvalidField, "channels.0"},
		{"101 channels", `{"name":"e","data":"x","channels":[` + strings.Join(many, ",") + `]}`, 400, pusher.ErrBadValue, "channels"},
		{"an invalid name in channels", `{"name":"e","data":"x","channels":["ok","not ok"]}`, 400, pusher.ErrBadValue, "channels.1"},
		{"a channel of 165 characters", `{"name":"e","data":"x","channel":"` + strings.Repeat("c", 165) + `"}`, 400, pusher.ErrBadValue, "channel"},
		{"an invalid channel", `{"name":"e","data":"x","channel":"a:b"}`, 400, pusher.ErrBadValue, "channel"},
		{"an empty channel", `{"name":"e","data":"x","channel":""}`, 422, pusher.ErrInvalidField, "channel"},
		{"a number for a channel", `{"name":"e","data":"x","channel":1}`, 422, pusher.ErrInvalidField, "channel"},

		{"a socket_id that is not one", `{"name":"e","data":"x","channel":"c","socket_id":"abc"}`, 400, pusher.ErrBadValue, "socket_id"},
		{"a socket_id with a newline", `{"name":"e","data":"x","channel":"c","socket_id":"1.2\n"}`, 400, pusher.ErrBadValue, "socket_id"},
		{"a number for a socket_id", `{"name":"e","data":"x","channel":"c","socket_id":1.2}`, 422, pusher.ErrInvalidField, "socket_id"},
		{"a number for info", `{"name":"e","data":"x","channel":"c","info":1}`, 422, pusher.ErrInvalidField, "info"},
		{"an info of 257 bytes", `{"name":"e","data":"x","channel":"c","info":"` + strings.Repeat("i", 257) + `"}`, 400, pusher.ErrBadValue, "info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ev, err := pusher.ParseEvent([]byte(tc.body), pusher.EventLimits{})
			is.Equal(ev.Name, "") // nothing half-parsed comes back
			var ae *pusher.APIError
			is.True(errors.As(err, &ae))
			is.Equal(ae.Status, tc.status)
			is.True(errors.Is(err, tc.reason))
			is.Equal(ae.Field, tc.field)
			is.True(len(ae.Message) < 400) // a hostile value is cut, not echoed whole
		})
	}
}

func TestParseBatch(t *testing.T) {
	is := is.New(t)
	// pusher-http-php's triggerBatch: each item names its channel.
	evs, err := pusher.ParseBatch([]byte(`{"batch":[{"channel":"tareas","name":"tarea.creada","data":"{\"id\":1}"},`+
		`{"channel":"private-App.Models.User.1","name":"e2","data":"[]","socket_id":"1.2","info":"subscription_count"}]}`), pusher.EventLimits{})
	is.NoErr(err)
	is.Equal(len(evs), 2)
	is.Equal(evs[0], pusher.Event{Name: "tarea.creada", Channels: []string{"tareas"}, Data: `{"id":1}`})
	is.Equal(evs[1], pusher.Event{Name: "e2", Channels: []string{"private-App.Models.User.1"}, Data: "[]", SocketID: "1.2", Info: "subscription_count"})

	ten := strings.TrimSuffix(strings.Repeat(`{"channel":"c","name":"e","data":"x"},`, 10), ",")
	evs, err = pusher.ParseBatch([]byte(`{"batch":[`+ten+`]}`), pusher.EventLimits{})
	is.NoErr(err)
	is.Equal(len(evs), 10)
}

func TestParseBatchRefusals(t *testing.T) {
	item := `{"channel":"c","name":"e","data":"x"}`
	eleven := strings.TrimSuffix(strings.Repeat(item+",", 11), ",")
	for _, tc := range []struct {
		name   string
		body   string
		lim    pusher.EventLimits
		status int
		reason error
		field  string
	}{
		{"invalid JSON", `{"batch":[`, pusher.EventLimits{}, 400, pusher.ErrMalformedBody, ""},
		{"an event, not a batch", item, pusher.EventLimits{}, 422, pusher.ErrInvalidField, "batch"},
		{"batch as an object", `{"batch":{"0":` + item + `}}`, pusher.EventLimits{}, 422, pusher.ErrInvalidField, "batch"},
		{"an empty batch", `{"batch":[]}`, pusher.EventLimits{}, 422, pusher.ErrInvalidField, "batch"},
		{"a batch of 11", `{"batch":[` + eleven + `]}`, pusher.EventLimits{}, 400, pusher.ErrBadValue, "batch"},
		{"a batch over a custom bound", `{"batch":[` + item + `,` + item + `]}`, pusher.EventLimits{MaxBatch: 1}, 400, pusher.ErrBadValue, "batch"},
		{"an item that is not an object", `{"batch":[` + item + `,"e"]}`, pusher.EventLimits{}, 422, pusher.ErrInvalidField, "batch.1"},
		{"a null item", `{"batch":[null]}`, pusher.EventLimits{}, 422, pusher.ErrInvalidField, "batch.0"},
		{"channels in a batch", `{"batch":[{"channels":["a"],"name":"e","data":"x"}]}`, pusher.EventLimits{}, 422, pusher.ErrInvalidField, "batch.0.channels"},
		{"no channel in an item", `{"batch":[` + item + `,{"name":"e","data":"x"}]}`, pusher.EventLimits{}, 422, pusher.ErrInvalidField, "batch.1.channel"},
		{"data not a string in the third item", `{"batch":[` + item + `,` + item + `,{"channel":"c","name":"e","data":{"a":1}}]}`, pusher.EventLimits{}, 422, pusher.ErrInvalidField, "batch.2.data"},
		{"data too large in an item", `{"batch":[{"channel":"c","name":"e","data":"xxxx"}]}`, pusher.EventLimits{MaxDataBytes: 3}, 413, pusher.ErrTooLarge, "batch.0.data"},
		{"an invalid channel in an item", `{"batch":[{"channel":"a b","name":"e","data":"x"}]}`, pusher.EventLimits{}, 400, pusher.ErrBadValue, "batch.0.channel"},
		{"a reserved name in an item", `{"batch":[{"channel":"c","name":"pusher:x","data":"x"}]}`, pusher.EventLimits{}, 400, pusher.ErrBadValue, "batch.0.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			evs, err := pusher.ParseBatch([]byte(tc.body), tc.lim)
			is.Equal(evs, nil) // a refused batch publishes nothing
			var ae *pusher.APIError
			is.True(errors.As(err, &ae))
			is.Equal(ae.Status, tc.status)
			is.True(errors.Is(err, tc.reason))
			is.Equal(ae.Field, tc.field)
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	is := is.New(t)
	err := pusher.BodyTooLarge(pusher.DefaultMaxBodyBytes)
	is.Equal(err.Status, 413)
	is.True(errors.Is(err, pusher.ErrTooLarge))
	is.Equal(err.Error(), "pusher: the request body is over 1048576 bytes")
}
