package pusher

import (
	"strings"
	"unicode/utf8"
)

// MaxChannelNameLength is the longest channel name, prefix included
// (Pusher's channel naming conventions: "a maximum of 164 characters").
const MaxChannelNameLength = 164

// MaxEventNameLength is the longest event name (Pusher's HTTP API: "name:
// event name, 200 characters"; soketi's default maxEventNameLength).
const MaxEventNameLength = 200

// Channel name prefixes. Order matters when classifying: private-encrypted-
// starts with private-.
const (
	PrivatePrefix   = "private-"
	PresencePrefix  = "presence-"
	EncryptedPrefix = "private-encrypted-"
	// ClientEventPrefix starts the name of every event a client may send
	// on a channel (Laravel Echo's whisper sends client-{name}).
	ClientEventPrefix = "client-"
)

// Kind is a channel's kind, read from its name's prefix.
type Kind uint8

const (
	// Public channels need no authorization.
	Public Kind = iota
	// Private channels (private-…) need a signature from the app's server.
	Private
	// Presence channels (presence-…) need a signature over channel_data,
	// and track who is subscribed.
	Presence
	// Encrypted channels (private-encrypted-…) are private channels whose
	// event data is end-to-end encrypted by the publisher: the server
	// relays it opaque and cannot read it.
	Encrypted
)

// KindOf classifies a channel name by prefix. It does not validate the name.
func KindOf(name string) Kind {
	switch {
	case strings.HasPrefix(name, EncryptedPrefix):
		return Encrypted
	case strings.HasPrefix(name, PrivatePrefix):
		return Private
	case strings.HasPrefix(name, PresencePrefix):
		return Presence
	}
	return Public
}

// NeedsAuth says whether subscribing needs an auth signature.
func (k Kind) NeedsAuth() bool { return k != Public }

// AcceptsClientEvents says whether clients may trigger client-* events on a
// channel of this kind: private and presence channels only (the protocol:
// "the channel must be either a private or a presence channel"; Pusher's
// client libraries cannot encrypt, so they send none on encrypted ones).
func (k Kind) AcceptsClientEvents() bool { return k == Private || k == Presence }

func (k Kind) String() string {
	switch k {
	case Private:
		return "private"
	case Presence:
		return "presence"
	case Encrypted:
		return "private-encrypted"
	}
	return "public"
}

// ValidChannelName applies Pusher's naming rule: 1 to 164 characters from
// [-a-zA-Z0-9_=@,.;] (what pusher-http-php's validate_channel and the
// channel naming conventions allow).
func ValidChannelName(name string) bool {
	if name == "" || len(name) > MaxChannelNameLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !channelByte(name[i]) {
			return false
		}
	}
	return true
}

func channelByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '=', '@', ',', '.', ';':
		return true
	}
	return false
}

// IsClientEvent says whether an event name is a client event: client-
// followed by at least one character.
func IsClientEvent(name string) bool {
	return len(name) > len(ClientEventPrefix) && strings.HasPrefix(name, ClientEventPrefix)
}

// validEventName: 1 to 200 characters (runes, not bytes: "characters" in
// Pusher's limit), valid UTF-8.
func validEventName(name string) bool {
	return name != "" && len(name) <= 4*MaxEventNameLength && utf8.ValidString(name) &&
		utf8.RuneCountInString(name) <= MaxEventNameLength
}

// reservedEventName: names the server alone may send. Letting a backend or
// a client publish "pusher_internal:member_added" would let it forge
// presence or subscription state in every browser on the channel.
func reservedEventName(name string) bool {
	return strings.HasPrefix(name, "pusher:") || strings.HasPrefix(name, "pusher_internal:")
}
