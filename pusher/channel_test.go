package pusher_test

import (
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/pusher"
)

func TestValidChannelName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"tareas", true},
		{"foo-bar_1234@=,.;", true}, // Pusher's documented example of a valid name
		{"private-App.Models.User.42", true},
		{"presence-room.1", true},
		{"private-encrypted-chat.7", true},
		{"private-", true}, // Pusher's pattern allows it: a private channel like any other
		{strings.Repeat("a", 164), true},
		{"private-" + strings.Repeat("a", 156), true}, // the prefix counts
		{"", false},
		{strings.Repeat("a", 165), false},
		{"private-" + strings.Repeat("a", 157), false},
		{"with space", false},
		{"colon:name", false},
		{"slash/name", false},
		{"star*", false},
		{"#server-to-user-1", false},
		{"ünïcode", false},
		{"tab\t", false},
		{"nul\x00", false},
		{"quote\"", false},
	} {
		if got := pusher.ValidChannelName(tc.name); got != tc.ok {
			t.Errorf("ValidChannelName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		name        string
		kind        pusher.Kind
		auth        bool
		clientEvent bool
		text        string
	}{
		{"tareas", pusher.Public, false, false, "public"},
		{"privateish", pusher.Public, false, false, "public"},
		{"presence", pusher.Public, false, false, "public"},
		{"private-App.Models.User.42", pusher.Private, true, true, "private"},
		{"private-cache-x", pusher.Private, true, true, "private"},
		{"presence-room.1", pusher.Presence, true, true, "presence"},
		{"presence-cache-room", pusher.Presence, true, true, "presence"},
		{"private-encrypted-chat", pusher.Encrypted, true, false, "private-encrypted"},
		{"private-encrypted-cache-chat", pusher.Encrypted, true, false, "private-encrypted"},
		{"private-encrypted", pusher.Private, true, true, "private"}, // no dash: private-, not private-encrypted-
	} {
		is := is.New(t)
		k := pusher.KindOf(tc.name)
		is.Equal(k, tc.kind)
		is.Equal(k.NeedsAuth(), tc.auth)
		is.Equal(k.AcceptsClientEvents(), tc.clientEvent)
		is.Equal(k.String(), tc.text)
	}
}

func TestIsClientEvent(t *testing.T) {
	is := is.New(t)
	for name, want := range map[string]bool{
		"client-typing": true, "client-x": true,
		"client-": false, "client": false, "Client-typing": false, "pusher:ping": false, "typing": false, "": false,
	} {
		is.Equal(pusher.IsClientEvent(name), want)
	}
}
