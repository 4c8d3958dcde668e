package pusher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"notification-service/internal/jsontext"
)

// Event is one event a backend triggers through the HTTP API, the body of
// POST /apps/{id}/events or one item of POST /apps/{id}/batch_events, as
// Laravel's broadcaster sends it.
type Event struct {
	// Name is the event name: broadcastAs(), or the event's class name.
	Name string
	// Channels holds one or more valid channel names, without duplicates,
	// in the order sent (from "channel" or "channels").
	Channels []string
	// Data is the payload as the sender encoded it: a string, usually
	// JSON ("[]" is Laravel's empty payload), relayed to clients as is.
	// On private-encrypted- channels it is ciphertext the server cannot
	// read.
	Data string
	// SocketID, when set, names the connection that must not receive the
	// event (Laravel's toOthers()).
	SocketID string
	// Info asks for channel attributes in the answer
	// ("user_count,subscription_count"); empty when not asked.
	Info string
}

// EventLimits bounds an HTTP API body; a zero field takes its default.
type EventLimits struct {
	// MaxDataBytes bounds each event's data, in bytes (default
	// DefaultMaxEventData).
	MaxDataBytes int
	// MaxChannels bounds the channels of one event (default
	// DefaultMaxChannels).
	MaxChannels int
	// MaxBatch bounds the events of one batch (default DefaultMaxBatch).
	MaxBatch int
}

// Defaults of EventLimits and of the body the HTTP layer reads.
const (
	// DefaultMaxEventData is Pusher's "event data should not be larger
	// than 10KB", read as 10 KiB.
	DefaultMaxEventData = 10 * 1024
	// DefaultMaxChannels is Pusher's "limited to 100 channels" (and the
	// chunk size of Laravel's broadcaster).
	DefaultMaxChannels = 100
	// DefaultMaxBatch is Pusher's and soketi's batch bound.
	DefaultMaxBatch = 10
	// DefaultMaxBodyBytes is a body bound for the HTTP layer: a full batch
	// of 10 events of 10 KiB of data, escaped, and 100 channels each, fits.
	DefaultMaxBodyBytes = 1 << 20
	// maxInfoLength bounds info, a comma-separated list of attribute names.
	maxInfoLength = 256
)

func (l EventLimits) withDefaults() EventLimits {
	if l.MaxDataBytes <= 0 {
		l.MaxDataBytes = DefaultMaxEventData
	}
	if l.MaxChannels <= 0 {
		l.MaxChannels = DefaultMaxChannels
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = DefaultMaxBatch
	}
	return l
}

// ParseEvent reads the body of POST /apps/{id}/events:
// {"name","data","channel" or "channels","socket_id"?,"info"?}. Unknown
// fields are ignored, as Pusher and Reverb ignore them. Every error is an
// *APIError:
//
//   - 400 ErrMalformedBody: not one JSON object of valid UTF-8 (Pusher:
//     "400 Error: details in response body"; soketi: "The received data is
//     incorrect");
//   - 422 ErrInvalidField with the field: a required field missing or
//     empty, a field of the wrong type (data not a string), channel and
//     channels both given (Reverb's validator: name and data required
//     strings, channels an array or channel a string);
//   - 400 ErrBadValue with the field: name over 200 characters or
//     reserved (pusher: and pusher_internal: names are the server's), an
//     invalid channel name, more than MaxChannels channels, a malformed
//     socket_id (Pusher's documented limits, soketi's 400s);
//   - 413 ErrTooLarge with the field: data over MaxDataBytes (Pusher: "you
//     will receive a 413").
func ParseEvent(body []byte, lim EventLimits) (Event, error) {
	lim = lim.withDefaults()
	m, e := decodeBody(body)
	if e != nil {
		return Event{}, e
	}
	ev, e := parseEventFields(m, "", false, lim)
	if e != nil {
		return Event{}, e
	}
	return ev, nil
}

// ParseBatch reads the body of POST /apps/{id}/batch_events:
// {"batch":[event, …]} with 1 to MaxBatch events, each naming its one
// channel in "channel" (Pusher's batch format; pusher-http-php's
// triggerBatch sends it so). Errors are those of ParseEvent, with fields
// named batch.N.field; a batch of more than MaxBatch events is a 400
// ErrBadValue (soketi: "Cannot batch-send more than 10 messages at once").
// Nothing in a refused batch is valid: the caller publishes all or none.
func ParseBatch(body []byte, lim EventLimits) ([]Event, error) {
	lim = lim.withDefaults()
	m, e := decodeBody(body)
	if e != nil {
		return nil, e
	}
	raw, ok := present(m, "batch")
	if !ok {
		return nil, invalidField("batch", "batch is required")
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, invalidField("batch", "batch must be an array of events")
	}
	switch {
	case len(items) == 0:
		return nil, invalidField("batch", "batch must hold at least one event")
	case len(items) > lim.MaxBatch:
		return nil, badValue("batch", fmt.Sprintf("batch holds %d events; the limit is %d", len(items), lim.MaxBatch))
	}
	events := make([]Event, 0, len(items))
	for i, item := range items {
		prefix := "batch." + strconv.Itoa(i)
		var fields map[string]json.RawMessage
		if json.Unmarshal(item, &fields) != nil || fields == nil {
			return nil, invalidField(prefix, prefix+" must be an event object")
		}
		ev, e := parseEventFields(fields, prefix+".", true, lim)
		if e != nil {
			return nil, e
		}
		events = append(events, ev)
	}
	return events, nil
}

// decodeBody decodes one JSON object into its fields, raw. Field names match
// exactly: encoding/json would match "Name" to name, which neither Pusher
// nor Reverb does.
func decodeBody(body []byte) (map[string]json.RawMessage, *APIError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, malformedBody("the request body is empty; send a JSON object")
	}
	if err := jsontext.Check(body, maxBodyDepth); err != nil {
		return nil, malformedBody("the request body " + err.Error())
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, malformedBody("the request body is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformedBody("unexpected data after the JSON object")
	}
	return m, nil
}

func parseEventFields(m map[string]json.RawMessage, prefix string, inBatch bool, lim EventLimits) (Event, *APIError) {
	var ev Event
	var e *APIError

	if ev.Name, e = requiredString(m, prefix, "name"); e != nil {
		return Event{}, e
	}
	switch {
	case !validEventName(ev.Name):
		return Event{}, badValue(prefix+"name", fmt.Sprintf("%sname is over %d characters", prefix, MaxEventNameLength))
	case reservedEventName(ev.Name):
		return Event{}, badValue(prefix+"name", fmt.Sprintf("%sname %q is reserved: pusher: and pusher_internal: events are the server's", prefix, truncate(ev.Name, 64)))
	}

	if ev.Data, e = requiredString(m, prefix, "data"); e != nil {
		return Event{}, e
	}
	if len(ev.Data) > lim.MaxDataBytes {
		return Event{}, &APIError{Status: 413, Field: prefix + "data", Err: ErrTooLarge,
			Message: fmt.Sprintf("%sdata is %d bytes; the limit is %d", prefix, len(ev.Data), lim.MaxDataBytes)}
	}

	if ev.Channels, e = eventChannels(m, prefix, inBatch, lim); e != nil {
		return Event{}, e
	}

	if ev.SocketID, e = optionalString(m, prefix, "socket_id"); e != nil {
		return Event{}, e
	}
	if ev.SocketID != "" && !ValidSocketID(ev.SocketID) {
		return Event{}, badValue(prefix+"socket_id", fmt.Sprintf("%ssocket_id %q is not a socket id (digits.digits)", prefix, truncate(ev.SocketID, 64)))
	}

	if ev.Info, e = optionalString(m, prefix, "info"); e != nil {
		return Event{}, e
	}
	if len(ev.Info) > maxInfoLength {
		return Event{}, badValue(prefix+"info", fmt.Sprintf("%sinfo is over %d bytes", prefix, maxInfoLength))
	}
	return ev, nil
}

// eventChannels reads "channel" or "channels": exactly one of them outside a
// batch, "channel" alone inside one.
func eventChannels(m map[string]json.RawMessage, prefix string, inBatch bool, lim EventLimits) ([]string, *APIError) {
	_, hasList := present(m, "channels")
	_, hasOne := present(m, "channel")
	switch {
	case inBatch && hasList:
		return nil, invalidField(prefix+"channels", prefix+"channels is not allowed in a batch: each event names its channel in channel")
	case hasList && hasOne:
		return nil, invalidField(prefix+"channel", prefix+"channel and "+prefix+"channels are both given: send one")
	case hasOne || inBatch:
		name, e := requiredString(m, prefix, "channel")
		if e != nil {
			return nil, e
		}
		if !ValidChannelName(name) {
			return nil, invalidChannel(prefix+"channel", name)
		}
		return []string{name}, nil
	case !hasList:
		return nil, invalidField(prefix+"channels", prefix+"channel or "+prefix+"channels is required")
	}

	var items []json.RawMessage
	if json.Unmarshal(m["channels"], &items) != nil {
		return nil, invalidField(prefix+"channels", prefix+"channels must be an array of channel names")
	}
	switch {
	case len(items) == 0:
		return nil, invalidField(prefix+"channels", prefix+"channels must name at least one channel")
	case len(items) > lim.MaxChannels:
		return nil, badValue(prefix+"channels", fmt.Sprintf("%schannels names %d channels; the limit is %d", prefix, len(items), lim.MaxChannels))
	}
	names := make([]string, 0, len(items))
	for i, item := range items {
		field := prefix + "channels." + strconv.Itoa(i)
		var name string
		if string(item) == "null" || json.Unmarshal(item, &name) != nil {
			return nil, invalidField(field, field+" must be a string")
		}
		if !ValidChannelName(name) {
			return nil, invalidChannel(field, name)
		}
		// A repeated channel would deliver twice; Pusher's fan-out sends
		// an event once per subscriber whatever the list holds.
		if !containsString(names, name) {
			names = append(names, name)
		}
	}
	return names, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// present returns a field unless it is absent or null: Laravel's validator
// treats null as missing.
func present(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

func requiredString(m map[string]json.RawMessage, prefix, key string) (string, *APIError) {
	s, e := optionalString(m, prefix, key)
	if e == nil && s == "" {
		return "", invalidField(prefix+key, prefix+key+" is required")
	}
	return s, e
}

func optionalString(m map[string]json.RawMessage, prefix, key string) (string, *APIError) {
	raw, ok := present(m, key)
	if !ok {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		msg := prefix + key + " must be a string"
		if key == "data" {
			msg += ": Pusher's data is the payload already JSON-encoded by the sender"
		}
		return "", invalidField(prefix+key, msg)
	}
	return s, nil
}

func malformedBody(msg string) *APIError {
	return &APIError{Status: 400, Message: msg, Err: ErrMalformedBody}
}

func invalidField(field, msg string) *APIError {
	return &APIError{Status: 422, Field: field, Message: msg, Err: ErrInvalidField}
}

func badValue(field, msg string) *APIError {
	return &APIError{Status: 400, Field: field, Message: msg, Err: ErrBadValue}
}

func invalidChannel(field, name string) *APIError {
	return badValue(field, fmt.Sprintf("%s %q is not a valid channel name: 1 to %d characters from A-Z a-z 0-9 - _ = @ , . ;",
		field, truncate(name, 64), MaxChannelNameLength))
}
