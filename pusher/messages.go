package pusher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"notification-service/internal/jsontext"
)

// DefaultMaxFrameBytes bounds a client frame when ParseClientMessage is given
// no bound: a client event of 10 KiB of data (Pusher's event size) in its
// envelope, or a presence subscription with its channel_data, fits.
const DefaultMaxFrameBytes = 16 * 1024

// Events a client sends.
const (
	EventPing        = "pusher:ping"
	EventPong        = "pusher:pong"
	EventSubscribe   = "pusher:subscribe"
	EventUnsubscribe = "pusher:unsubscribe"
)

// MessageKind says what a client frame asks for.
type MessageKind uint8

const (
	// MessageOther is any event this package does not interpret
	// (pusher:signin, an event neither pusher: nor client-): the
	// transport answers it with an error or ignores it.
	MessageOther MessageKind = iota
	// MessagePing (pusher:ping) wants a pusher:pong.
	MessagePing
	// MessagePong (pusher:pong) answers the server's pusher:ping.
	MessagePong
	// MessageSubscribe (pusher:subscribe) names Channel, with Auth for
	// private, presence and encrypted channels and ChannelData for
	// presence ones.
	MessageSubscribe
	// MessageUnsubscribe (pusher:unsubscribe) names Channel.
	MessageUnsubscribe
	// MessageClientEvent (client-…) asks to relay Data to the other
	// subscribers of Channel (Laravel Echo's whisper).
	MessageClientEvent
)

func (k MessageKind) String() string {
	switch k {
	case MessagePing:
		return "ping"
	case MessagePong:
		return "pong"
	case MessageSubscribe:
		return "subscribe"
	case MessageUnsubscribe:
		return "unsubscribe"
	case MessageClientEvent:
		return "client event"
	}
	return "other"
}

// ClientMessage is one parsed client frame.
type ClientMessage struct {
	Kind  MessageKind
	Event string
	// Channel is a valid channel name for subscribe, unsubscribe and
	// client events (data.channel for the first two, the frame's channel
	// for the last); empty otherwise.
	Channel string
	// Auth and ChannelData are pusher:subscribe's data.auth and
	// data.channel_data, exactly as sent (the signature covers their
	// bytes); empty when absent.
	Auth        string
	ChannelData string
	// Data is a client event's payload as the data string to relay: the
	// string itself when the client sent a JSON string, the compact JSON
	// text of anything else (pusher-js sends an object), "null" when
	// absent. Server events carry data as a string (the protocol's double
	// encoding), and pusher-js parses it back.
	Data []byte
}

// ParseClientMessage reads one client frame, {"event", "data", "channel"},
// at most maxBytes long (0 or less means DefaultMaxFrameBytes) and nested at
// most MaxFrameDepth levels. data may be an object or a JSON string holding
// one (some clients encode it twice); pusher-js sends pusher:subscribe's data
// as an object {channel, auth, channel_data}. Unknown fields are ignored.
//
// Errors are *ProtocolError with NoCode (the pusher:error Pusher sends for
// in-band errors carries "code":null), wrapping ErrFrameTooLarge,
// ErrMalformedFrame or ErrInvalidChannel. A refused frame should be
// answered with a pusher:error (AppendErrorFor) and the connection kept.
func ParseClientMessage(frame []byte, maxBytes int) (ClientMessage, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFrameBytes
	}
	if len(frame) > maxBytes {
		return ClientMessage{}, &ProtocolError{Err: ErrFrameTooLarge,
			Message: fmt.Sprintf("the frame is %d bytes; the limit is %d", len(frame), maxBytes)}
	}
	fields, err := decodeFrameObject(frame, "the frame")
	if err != nil {
		return ClientMessage{}, err
	}
	var m ClientMessage
	raw, ok := present(fields, "event")
	if !ok || json.Unmarshal(raw, &m.Event) != nil || m.Event == "" {
		return ClientMessage{}, malformedFrame("the frame has no event name (a string)")
	}
	if !validEventName(m.Event) {
		return ClientMessage{}, malformedFrame(fmt.Sprintf("the event name is over %d characters", MaxEventNameLength))
	}

	switch {
	case m.Event == EventPing:
		m.Kind = MessagePing
	case m.Event == EventPong:
		m.Kind = MessagePong
	case m.Event == EventSubscribe, m.Event == EventUnsubscribe:
		m.Kind = MessageSubscribe
		if m.Event == EventUnsubscribe {
			m.Kind = MessageUnsubscribe
		}
		data, err := subscriptionData(fields)
		if err != nil {
			return ClientMessage{}, err
		}
		if m.Channel, err = frameString(data, "channel", "data.channel"); err != nil {
			return ClientMessage{}, err
		}
		if err := checkFrameChannel(m.Event, m.Channel); err != nil {
			return ClientMessage{}, err
		}
		if m.Kind == MessageSubscribe {
			if m.Auth, err = frameString(data, "auth", "data.auth"); err != nil {
				return ClientMessage{}, err
			}
			if m.ChannelData, err = frameString(data, "channel_data", "data.channel_data"); err != nil {
				return ClientMessage{}, err
			}
		}
	case IsClientEvent(m.Event):
		m.Kind = MessageClientEvent
		if m.Channel, err = frameString(fields, "channel", "channel"); err != nil {
			return ClientMessage{}, err
		}
		if err := checkFrameChannel(m.Event, m.Channel); err != nil {
			return ClientMessage{}, err
		}
		if m.Data, err = relayData(fields["data"]); err != nil {
			return ClientMessage{}, err
		}
	default:
		m.Kind = MessageOther
	}
	return m, nil
}

// decodeFrameObject decodes one JSON object into its fields, raw, with
// exact field names.
func decodeFrameObject(b []byte, what string) (map[string]json.RawMessage, error) {
	if err := jsontext.Check(b, MaxFrameDepth); err != nil {
		return nil, malformedFrame(what + " " + err.Error())
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, malformedFrame(what + " is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformedFrame("unexpected data after " + what)
	}
	return fields, nil
}

// subscriptionData returns the fields of pusher:subscribe's or
// pusher:unsubscribe's data: an object, or a string holding one.
func subscriptionData(fields map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	raw, ok := present(fields, "data")
	if !ok {
		return nil, malformedFrame("the frame has no data naming the channel")
	}
	if raw[0] == '"' {
		var inner string
		if json.Unmarshal(raw, &inner) != nil {
			return nil, malformedFrame("data is not a valid JSON string")
		}
		return decodeFrameObject([]byte(inner), "data")
	}
	if raw[0] != '{' {
		return nil, malformedFrame("data must be an object with the channel")
	}
	return decodeFrameObject(raw, "data")
}

// frameString reads an optional string field; empty when absent or null.
func frameString(fields map[string]json.RawMessage, key, name string) (string, error) {
	raw, ok := present(fields, key)
	if !ok {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", malformedFrame(name + " must be a string")
	}
	return s, nil
}

func checkFrameChannel(event, channel string) error {
	if channel == "" {
		return malformedFrame(event + " needs a channel")
	}
	if !ValidChannelName(channel) {
		return &ProtocolError{Err: ErrInvalidChannel,
			Message: fmt.Sprintf("%q is not a valid channel name: 1 to %d characters from A-Z a-z 0-9 - _ = @ , . ;", truncate(channel, 64), MaxChannelNameLength)}
	}
	return nil
}

// relayData turns a client event's data into the string a server event
// carries.
func relayData(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return []byte("null"), nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, malformedFrame("data is not a valid JSON string")
		}
		return []byte(s), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, malformedFrame("data is not valid JSON")
	}
	return buf.Bytes(), nil
}

func malformedFrame(msg string) *ProtocolError {
	return &ProtocolError{Message: msg, Err: ErrMalformedFrame}
}
