package laravel_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/laravel"
)

// fixtureBroadcast rebuilds the broadcast a captured EVAL published: one
// payload, one message per channel.
func fixtureBroadcast(t *testing.T, name string) laravel.Broadcast {
	t.Helper()
	f := loadFixture(t, name)
	var channels []string
	for _, m := range f.Messages {
		if m.Payload != f.Messages[0].Payload {
			t.Fatalf("fixture %s: one EVAL publishes one payload", name)
		}
		channels = append(channels, strings.TrimPrefix(m.Channel, f.Prefix))
	}
	b, err := laravel.DecodeMessage([]byte(f.Messages[0].Payload), channels)
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return b
}

// laravelID returns the notification UUID Laravel put in a fixture.
func laravelID(t *testing.T, b laravel.Broadcast) string {
	t.Helper()
	var d struct{ ID string }
	if err := json.Unmarshal(b.Data, &d); err != nil || d.ID == "" {
		t.Fatalf("no data.id in %s", b.Data)
	}
	return d.ID
}

// jsonEqual compares two JSON texts by value ("m\u00ed" equals "mí").
func jsonEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	if want == "" {
		if got != nil {
			t.Fatalf("data: got %s, want none", got)
		}
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("data %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("data: got %s, want %s", got, want)
	}
}

func TestMappingOfCapturedBroadcasts(t *testing.T) {
	type want struct {
		id, user, typ, title, message, exclude string
		channels                               []string
		data                                   string
	}
	tests := []struct {
		fixture string
		want    func(b laravel.Broadcast) want
	}{
		{"a-tarea-creada", func(laravel.Broadcast) want {
			return want{typ: "tarea.creada", channels: []string{"tareas"},
				data: `{"tarea":{"id":7,"titulo":"Revisar el informe trimestral","user_id":42}}`}
		}},
		{"b-multi-channel", func(laravel.Broadcast) want {
			// Title and message stay out: an encrypted channel's payload
			// is relayed as it is.
			return want{typ: `App\Events\PedidoActualizado`,
				channels: []string{"pedidos", "private-orders.1", "presence-chat.1", "private-encrypted-billing.1"},
				data:     `{"pedido_id":1,"estado":"enviado","title":"Pedido enviado","message":"Tu pedido #1 está en camino"}`}
		}},
		{"c-empty-payload", func(laravel.Broadcast) want {
			return want{typ: "cache.invalidada", channels: []string{"cache"}}
		}},
		{"d-to-others", func(laravel.Broadcast) want {
			return want{typ: "mensaje.enviado", channels: []string{"private-conversacion.3"}, exclude: "1234.5678",
				data: `{"conversacion":3,"texto":"Hola a todos menos a mí"}`}
		}},
		{"e-notification", func(b laravel.Broadcast) want {
			id := laravelID(t, b)
			return want{id: id, user: "42", typ: `App\Notifications\TareaAsignada`,
				title: "Nueva Tarea Asignada", message: "Revisar el informe trimestral",
				data: fmt.Sprintf(`{"tarea_id":7,"title":"Nueva Tarea Asignada","message":"Revisar el informe trimestral","id":%q,"type":"App\\Notifications\\TareaAsignada"}`, id)}
		}},
		{"f-notification-socket", func(b laravel.Broadcast) want {
			id := laravelID(t, b)
			return want{id: id, user: "42", typ: `App\Notifications\RecordatorioConSocket`,
				title: "Recordatorio", message: "Tu tarea vence hoy a las 5 PM",
				data: fmt.Sprintf(`{"title":"Recordatorio","message":"Tu tarea vence hoy a las 5 PM","id":%q,"type":"App\\Notifications\\RecordatorioConSocket"}`, id)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			is := is.New(t)
			b := fixtureBroadcast(t, tt.fixture)
			ns, err := laravel.Mapping{}.Notifications(b)
			is.NoErr(err)
			is.Equal(len(ns), 1) // one broadcast, one notification
			n, w := ns[0], tt.want(b)
			is.Equal(n.ID, w.id)
			is.Equal(n.UserID, w.user)
			is.Equal(n.Type, w.typ)
			is.Equal(n.Title, w.title)
			is.Equal(n.Message, w.message)
			is.Equal(n.Exclude, w.exclude)
			is.Equal(n.Channels, w.channels)
			jsonEqual(t, n.Data, w.data)
			is.True(!strings.Contains(string(n.Data), `"socket"`)) // never reaches clients
		})
	}
}

func TestMappingRules(t *testing.T) {
	const uuid = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
	notification := func(channels ...string) laravel.Broadcast {
		return laravel.Broadcast{Event: laravel.NotificationEvent, Channels: channels,
			Data: json.RawMessage(`{"id":"` + uuid + `","type":"App\\Notifications\\Aviso","title":"Hola"}`)}
	}
	tests := []struct {
		name    string
		mapping laravel.Mapping
		in      laravel.Broadcast
		want    []broker.Notification
	}{
		{"title and message from the payload", laravel.Mapping{},
			laravel.Broadcast{Event: "pedido.enviado", Channels: []string{"private-orders.1"},
				Data: json.RawMessage(`{"title":"Pedido enviado","message":"En camino","n":1}`)},
			[]broker.Notification{{Type: "pedido.enviado", Title: "Pedido enviado", Message: "En camino",
				Channels: []string{"private-orders.1"}, Data: json.RawMessage(`{"title":"Pedido enviado","message":"En camino","n":1}`)}}},
		{"a title that is not a string, or too long, is left out", laravel.Mapping{},
			laravel.Broadcast{Event: "e", Channels: []string{"c"},
				Data: json.RawMessage(`{"title":` + fmt.Sprintf("%q", strings.Repeat("t", 1025)) + `,"message":7}`)},
			[]broker.Notification{{Type: "e", Channels: []string{"c"},
				Data: json.RawMessage(`{"title":"` + strings.Repeat("t", 1025) + `","message":7}`)}}},
		{"repeated channels once, order kept; whitespace compacted", laravel.Mapping{},
			laravel.Broadcast{Event: "e", Channels: []string{"b", "a", "b"}, Data: json.RawMessage(" { \"k\" : [ 1, 2 ] } ")},
			[]broker.Notification{{Type: "e", Channels: []string{"b", "a"}, Data: json.RawMessage(`{"k":[1,2]}`)}}},
		{"data holding only socket is no data", laravel.Mapping{},
			laravel.Broadcast{Event: "e", Channels: []string{"c"}, Data: json.RawMessage(`{"socket":"1.2"}`), Socket: "1.2"},
			[]broker.Notification{{Type: "e", Channels: []string{"c"}, Exclude: "1.2"}}},
		{"data null is no data", laravel.Mapping{},
			laravel.Broadcast{Event: "e", Channels: []string{"c"}, Data: json.RawMessage(`null`)},
			[]broker.Notification{{Type: "e", Channels: []string{"c"}}}},
		{"every name Pusher allows", laravel.Mapping{},
			laravel.Broadcast{Event: "e", Channels: []string{"private-a-Z_0=9@x,y.z;w", strings.Repeat("c", 164)}},
			[]broker.Notification{{Type: "e", Channels: []string{"private-a-Z_0=9@x,y.z;w", strings.Repeat("c", 164)}}}},
		{"a broadcast notification to two users and a channel of its own", laravel.Mapping{},
			notification("private-App.Models.User.7", "private-App.Models.User.8", "private-admins"),
			[]broker.Notification{
				{ID: uuid, UserID: "7", Type: `App\Notifications\Aviso`, Title: "Hola", Data: notification().Data},
				{ID: uuid, UserID: "8", Type: `App\Notifications\Aviso`, Title: "Hola", Data: notification().Data},
				{Type: `App\Notifications\Aviso`, Title: "Hola", Channels: []string{"private-admins"}, Data: notification().Data}}},
		{"a user with a UUID key", laravel.Mapping{},
			notification("private-App.Models.User." + uuid),
			[]broker.Notification{{ID: uuid, UserID: uuid, Type: `App\Notifications\Aviso`, Title: "Hola", Data: notification().Data}}},
		{"another event on a user's channel stays a channel broadcast", laravel.Mapping{},
			laravel.Broadcast{Event: "perfil.actualizado", Channels: []string{"private-App.Models.User.7"}},
			[]broker.Notification{{Type: "perfil.actualizado", Channels: []string{"private-App.Models.User.7"}}}},
		{"the model prefix is configurable", laravel.Mapping{UserChannelPrefix: "App.Models.Admin."},
			notification("private-App.Models.Admin.3", "private-App.Models.User.7"),
			[]broker.Notification{
				{ID: uuid, UserID: "3", Type: `App\Notifications\Aviso`, Title: "Hola", Data: notification().Data},
				{Type: `App\Notifications\Aviso`, Title: "Hola", Channels: []string{"private-App.Models.User.7"}, Data: notification().Data}}},
		{"the socket excludes on every notification", laravel.Mapping{},
			laravel.Broadcast{Event: laravel.NotificationEvent, Channels: []string{"private-App.Models.User.7", "x"},
				Data: json.RawMessage(`{"id":"n1","type":"t"}`), Socket: "123.456"},
			[]broker.Notification{
				{ID: "n1", UserID: "7", Type: "t", Data: json.RawMessage(`{"id":"n1","type":"t"}`), Exclude: "123.456"},
				{Type: "t", Channels: []string{"x"}, Data: json.RawMessage(`{"id":"n1","type":"t"}`), Exclude: "123.456"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			got, err := tt.mapping.Notifications(tt.in)
			is.NoErr(err)
			is.Equal(got, tt.want)
		})
	}
}

func TestMappingRefuses(t *testing.T) {
	manyChannels := make([]string, 101)
	for i := range manyChannels {
		manyChannels[i] = fmt.Sprintf("c%d", i)
	}
	ok := laravel.Broadcast{Event: "e", Channels: []string{"c"}, Data: json.RawMessage(`{"k":1}`)}
	with := func(change func(b *laravel.Broadcast)) laravel.Broadcast {
		b := ok
		change(&b)
		return b
	}
	data := func(s string) laravel.Broadcast {
		return with(func(b *laravel.Broadcast) { b.Data = json.RawMessage(s) })
	}
	notification := func(d string) laravel.Broadcast {
		return laravel.Broadcast{Event: laravel.NotificationEvent, Channels: []string{"private-App.Models.User.7"}, Data: json.RawMessage(d)}
	}
	tests := []struct {
		name  string
		in    laravel.Broadcast
		field string
	}{
		{"missing event", with(func(b *laravel.Broadcast) { b.Event = "" }), "event"},
		{"event of 65 characters", with(func(b *laravel.Broadcast) { b.Event = strings.Repeat("e", 65) }), "event"},
		// A realistic Laravel class name the service's 64-character
		// type bound refuses (see MaxTypeLen).
		{"a long event class name", with(func(b *laravel.Broadcast) {
			b.Event = `App\Notifications\Marketplace\Orders\OrderShipmentDelayedNotification`
		}), "event"},
		{"control characters in the event", with(func(b *laravel.Broadcast) { b.Event = "a\nb" }), "event"},
		{"no channel", with(func(b *laravel.Broadcast) { b.Channels = nil }), "channels"},
		{"101 channels", with(func(b *laravel.Broadcast) { b.Channels = manyChannels }), "channels"},
		{"a channel with a space", with(func(b *laravel.Broadcast) { b.Channels = []string{"a b"} }), "channels"},
		{"a channel with a colon", with(func(b *laravel.Broadcast) { b.Channels = []string{"a:b"} }), "channels"},
		{"a channel of 165 characters", with(func(b *laravel.Broadcast) { b.Channels = []string{strings.Repeat("c", 165)} }), "channels"},
		{"an empty channel name", with(func(b *laravel.Broadcast) { b.Channels = []string{""} }), "channels"},
		{"a socket id of another form", with(func(b *laravel.Broadcast) { b.Socket = "abc" }), "socket"},
		{"data a string", data(`"x"`), "data"},
		{"data a list", data(`[1,2]`), "data"},
		{"data a number", data(`7`), "data"},
		{"data malformed", data(`{"k":`), "data"},
		{"data with trailing garbage", data(`{"k":1} {}`), "data"},
		{"data invalid UTF-8", data("{\"k\":\"\xff\"}"), "data"},
		{"data with an unpaired surrogate", data(`{"k":"\ud800"}`), "data"},
		{"data with a lone low surrogate", data(`{"k":"\udc00x"}`), "data"},
		{"data nested 32 levels (data is level 2)", data(strings.Repeat(`{"k":`, 32) + "1" + strings.Repeat("}", 32)), "data"},
		{"data over 64 KiB", data(`{"k":"` + strings.Repeat("x", 64<<10) + `"}`), "data"},
		{"a notification without id", notification(`{"type":"t"}`), "data.id"},
		{"a notification with a bad id", notification(`{"id":"a b","type":"t"}`), "data.id"},
		{"a notification without type", notification(`{"id":"n1"}`), "data.type"},
		{"a notification to a bad user id", laravel.Broadcast{Event: laravel.NotificationEvent,
			Channels: []string{"private-App.Models.User.a,b"}, Data: json.RawMessage(`{"id":"n1","type":"t"}`)}, "channels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			ns, err := laravel.Mapping{}.Notifications(tt.in)
			var fe *laravel.FieldError
			is.True(errors.As(err, &fe)) // a typed error naming the field
			is.Equal(fe.Field, tt.field)
			is.Equal(ns, nil)
		})
	}
}

func TestMappingAcceptsWhatTheBoundsAllow(t *testing.T) {
	is := is.New(t)
	b := laravel.Broadcast{Event: strings.Repeat("é", laravel.MaxTypeLen), Channels: make([]string, 100),
		Data: json.RawMessage(strings.Repeat(`{"k":`, 31) + `"\ud83d\ude00"` + strings.Repeat("}", 31))}
	for i := range b.Channels {
		b.Channels[i] = fmt.Sprintf("c%d", i)
	}
	ns, err := laravel.Mapping{}.Notifications(b)
	is.NoErr(err)
	is.Equal(len(ns[0].Channels), 100)
}

func TestDecodeMessageRefuses(t *testing.T) {
	tests := []struct{ name, body, field string }{
		{"not JSON", `{"event":`, "message"},
		{"not an object", `[1]`, "message"},
		{"event not a string", `{"event":7,"data":[]}`, "event"},
		{"socket not a string", `{"event":"e","data":[],"socket":1}`, "socket"},
		{"invalid UTF-8", "{\"event\":\"\xff\"}", "message"},
		{"an unpaired surrogate in the event", `{"event":"\ud800","data":[]}`, "message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			_, err := laravel.DecodeMessage([]byte(tt.body), []string{"c"})
			var fe *laravel.FieldError
			is.True(errors.As(err, &fe))
			is.Equal(fe.Field, tt.field)
		})
	}
}

func TestValidChannel(t *testing.T) {
	is := is.New(t)
	for _, ok := range []string{"tareas", "private-App.Models.User.42", "presence-chat.1", "private-encrypted-x", "a,b;c=d@e", strings.Repeat("x", 164)} {
		is.True(laravel.ValidChannel(ok))
	}
	for _, bad := range []string{"", "a b", "a:b", "a/b", "ü", strings.Repeat("x", 165), "a\x00"} {
		is.True(!laravel.ValidChannel(bad))
	}
}
