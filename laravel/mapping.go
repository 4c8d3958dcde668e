package laravel

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"notification-service/broker"
)

// Broadcast is one Laravel broadcast, as both of its wire formats carry it:
// the Pusher HTTP API's body (name, channels, data as a JSON string,
// socket_id) and the `redis` broadcaster's message ({"event","data",
// "socket"} published once per channel).
type Broadcast struct {
	// Event is the event's name: its broadcastAs() or its class name
	// (App\Events\TareaCreada).
	Event string
	// Channels are the names Laravel gives, prefixes included
	// (private-orders.1, presence-chat.1, private-encrypted-billing.1).
	Channels []string
	// Data is the payload: a JSON object, or [] (PHP's empty array), or
	// empty.
	Data json.RawMessage
	// Socket is the socket id of the connection that caused the broadcast
	// (X-Socket-ID, toOthers()); empty when none.
	Socket string
}

// NotificationEvent is the event Laravel broadcasts for a notification sent
// through the "broadcast" channel.
const NotificationEvent = `Illuminate\Notifications\Events\BroadcastNotificationCreated`

// DefaultUserChannelPrefix is what follows "private-" in the channel of
// Laravel's App\Models\User: private-App.Models.User.{id}.
const DefaultUserChannelPrefix = "App.Models.User."

// Bounds the service's own validation applies to what a backend sends
// (transport's REST send): the mapping refuses what the service would.
const (
	// MaxChannelLen is Pusher's and Laravel's bound on a channel name.
	MaxChannelLen = 164
	// MaxTypeLen bounds a notification's type: the event name, or a
	// notification's type (its class name). It is transport's bound on
	// "type"; Pusher allows event names of 200 characters.
	MaxTypeLen = 64
	// maxTitleLen bounds a title taken from the payload (transport's).
	maxTitleLen = 1024
	// maxSocketLen bounds a socket id: "digits.digits".
	maxSocketLen = 64
)

// Mapping holds the settings of the mapping; the zero value uses the
// defaults.
type Mapping struct {
	// UserChannelPrefix is the notifiable model's channel prefix after
	// "private-" (DefaultUserChannelPrefix when empty). Laravel names it
	// after the model's class: App\Models\Admin gives "App.Models.Admin.".
	UserChannelPrefix string
	// MaxChannels bounds the channels of one broadcast (100 when 0), as
	// MAX_CHANNELS_PER_CONNECTION bounds a send.
	MaxChannels int
	// MaxDataBytes bounds the payload (64 KiB when 0), as MAX_BODY_BYTES
	// bounds a send.
	MaxDataBytes int
	// MaxDepth bounds JSON nesting the way MAX_JSON_DEPTH does for a send
	// (32 when 0): a REST body is level 1 and its data level 2, so the
	// payload's own object counts as level 2 here too.
	MaxDepth int
}

// FieldError is why a broadcast is refused, naming its field: event,
// channels, data, data.id, data.type or socket.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "laravel: " + e.Field + ": " + e.Reason }

func refuse(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

var (
	// The service's id alphabet (transport's idPattern): a user id taken
	// from a channel name, and a notification's id, travel in URLs, Redis
	// keys and log lines.
	idPattern = regexp.MustCompile(`^[A-Za-z0-9_.:@=+-]{1,128}$`)
	// socketPattern is Pusher's socket id (Laravel's X-Socket-ID).
	socketPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
)

// ValidChannel reports whether name is a channel name Laravel and Pusher
// allow: 1 to 164 characters of A-Z a-z 0-9 - _ = @ , . ;
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_=@,.;", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Notifications maps one broadcast to what the service publishes:
//
//   - BroadcastNotificationCreated on private-<UserChannelPrefix>{id}: one
//     notification addressed to user {id} (no channels), its ID Laravel's
//     notification UUID (data.id), its type data.type;
//   - anything else: one notification on the broadcast's channels (kept as
//     given, duplicates dropped), typed with the event name, or data.type
//     for a notification broadcast on channels of its own. Its ID is left
//     empty for the publisher to assign.
//
// Data is the payload object without its top-level "socket" key (Laravel
// copies the socket id there; it must never reach clients), or nothing when
// that leaves it empty. Title and message come from the payload's string
// fields of those names when they fit the service's bounds, except on a
// broadcast to a private-encrypted- channel, whose payload is relayed as is.
// Socket becomes every notification's Exclude. The user notifications come
// first, so a retried publish is recognised by Laravel's id.
func (m Mapping) Notifications(b Broadcast) ([]broker.Notification, error) {
	if err := checkType("event", b.Event); err != nil {
		return nil, err
	}
	channels, err := m.channels(b.Channels)
	if err != nil {
		return nil, err
	}
	if b.Socket != "" && (len(b.Socket) > maxSocketLen || !socketPattern.MatchString(b.Socket)) {
		return nil, refuse("socket", "a socket id has the form 1234.5678")
	}
	p, err := parsePayload(b.Data, m.maxDataBytes(), m.maxDepth())
	if err != nil {
		return nil, err
	}

	base := broker.Notification{Type: b.Event, Data: p.object, Exclude: b.Socket}
	if !anyEncrypted(channels) {
		base.Title, base.Message = p.title(), p.message()
	}
	if b.Event != NotificationEvent {
		base.Channels = channels
		return []broker.Notification{base}, nil
	}

	// A broadcast notification: Laravel's id and type travel in its data.
	base.Type = p.strings["type"]
	if err := checkType("data.type", base.Type); err != nil {
		return nil, err
	}
	id := p.strings["id"]
	if !idPattern.MatchString(id) {
		return nil, refuse("data.id", "a notification's id must be 1-128 characters of A-Z a-z 0-9 _ . : @ = + -")
	}
	var ns []broker.Notification
	var others []string
	for _, ch := range channels {
		user, ok := strings.CutPrefix(ch, "private-"+m.userChannelPrefix())
		if !ok {
			others = append(others, ch)
			continue
		}
		if !idPattern.MatchString(user) {
			return nil, refuse("channels", "the user id in %q must be 1-128 characters of A-Z a-z 0-9 _ . : @ = + -", ch)
		}
		n := base
		n.ID, n.UserID = id, user
		ns = append(ns, n)
	}
	if len(others) > 0 {
		n := base
		n.Channels = others
		ns = append(ns, n)
	}
	return ns, nil
}

// channels validates the channel list and drops repeats, keeping order.
func (m Mapping) channels(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, refuse("channels", "a broadcast names at least one channel")
	}
	if len(in) > m.maxChannels() {
		return nil, refuse("channels", "at most %d channels", m.maxChannels())
	}
	out := make([]string, 0, len(in))
	for _, ch := range in {
		if !ValidChannel(ch) {
			return nil, refuse("channels", "channel %.64q must be 1-%d characters of A-Z a-z 0-9 - _ = @ , . ;", ch, MaxChannelLen)
		}
		if !slices.Contains(out, ch) {
			out = append(out, ch)
		}
	}
	return out, nil
}

func anyEncrypted(channels []string) bool {
	for _, ch := range channels {
		if strings.HasPrefix(ch, "private-encrypted-") {
			return true
		}
	}
	return false
}

// checkType applies the service's rule for a notification's type.
func checkType(field, s string) *FieldError {
	switch {
	case s == "":
		return refuse(field, "missing")
	case !utf8.ValidString(s):
		return refuse(field, "not valid UTF-8")
	case utf8.RuneCountInString(s) > MaxTypeLen:
		return refuse(field, "longer than %d characters", MaxTypeLen)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return refuse(field, "contains control characters")
	}
	return nil
}

// fitsTitle says whether a payload's title may become the notification's.
func fitsTitle(s string) bool {
	return utf8.RuneCountInString(s) <= maxTitleLen && strings.IndexFunc(s, unicode.IsControl) < 0
}

func (m Mapping) userChannelPrefix() string {
	if m.UserChannelPrefix == "" {
		return DefaultUserChannelPrefix
	}
	return m.UserChannelPrefix
}

func (m Mapping) maxChannels() int { return orDefault(m.MaxChannels, 100) }

func (m Mapping) maxDataBytes() int { return orDefault(m.MaxDataBytes, 64<<10) }

func (m Mapping) maxDepth() int { return orDefault(m.MaxDepth, 32) }

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
