package pusher

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Encoders of the messages the server sends, byte for byte as Pusher sends
// them. They append to b and return it, so the hot path encodes into a
// reusable buffer without allocating. The field order is Pusher's own
// (captured frames of Pusher's service: {"event","data","channel"}), and data
// is a JSON-encoded string (the protocol's "double encoding") except in
// pusher:error, where Pusher sends an object.
//
// Every encoder produces valid JSON and valid UTF-8 whatever its string
// arguments hold: they are escaped, invalid UTF-8 becomes U+FFFD.

// Events the server sends.
const (
	EventConnectionEstablished = "pusher:connection_established"
	EventError                 = "pusher:error"
	EventSubscriptionSucceeded = "pusher_internal:subscription_succeeded"
	EventMemberAdded           = "pusher_internal:member_added"
	EventMemberRemoved         = "pusher_internal:member_removed"
)

// AppendConnectionEstablished appends the first message of a connection:
// {"event":"pusher:connection_established","data":"{\"socket_id\":\"…\",\"activity_timeout\":120}"}.
// activityTimeout is sent in whole seconds, at least 1.
func AppendConnectionEstablished(b []byte, socketID string, activityTimeout time.Duration) []byte {
	secs := max(int64(activityTimeout/time.Second), 1)
	b = append(b, `{"event":"pusher:connection_established","data":"{\"socket_id\":`...)
	b = appendNestedString(b, socketID)
	b = append(b, `,\"activity_timeout\":`...)
	b = strconv.AppendInt(b, secs, 10)
	return append(b, `}"}`...)
}

// AppendPing appends {"event":"pusher:ping","data":"{}"}, the ping the
// server sends a client that cannot receive WebSocket ping frames.
func AppendPing(b []byte) []byte { return append(b, `{"event":"pusher:ping","data":"{}"}`...) }

// AppendPong appends {"event":"pusher:pong","data":"{}"}, the answer to a
// client's pusher:ping.
func AppendPong(b []byte) []byte { return append(b, `{"event":"pusher:pong","data":"{}"}`...) }

// AppendError appends {"event":"pusher:error","data":{"code":4009,"message":"…"}},
// with "code":null for NoCode. data is an object here, as Pusher sends it
// (pusher-js accepts an object or a string).
func AppendError(b []byte, code Code, message string) []byte {
	b = append(b, `{"event":"pusher:error","data":{"code":`...)
	if code == NoCode {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(code), 10)
	}
	b = append(b, `,"message":`...)
	b = appendJSONString(b, message)
	return append(b, `}}`...)
}

// AppendErrorFor appends the pusher:error answering err: a *ProtocolError's
// code and message, or, for any other error, "code":null and a generic
// message, so that no internal error text ever reaches a client.
func AppendErrorFor(b []byte, err error) []byte {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return AppendError(b, pe.Code, pe.Message)
	}
	return AppendError(b, NoCode, "internal error")
}

// AppendSubscriptionSucceeded appends the answer to a subscription of a
// public, private or encrypted channel:
// {"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"…"}.
func AppendSubscriptionSucceeded(b []byte, channel string) []byte {
	b = append(b, `{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":`...)
	b = appendJSONString(b, channel)
	return append(b, '}')
}

// AppendPresenceSubscriptionSucceeded appends the answer to a presence
// subscription, with the channel's members (the subscriber included):
// data is {"presence":{"ids":[…],"hash":{id:info,…},"count":N}} as a string.
// A member without info maps to null in hash (pusher-js then still finds
// it); members repeating a UserID count once, the first one's info kept.
func AppendPresenceSubscriptionSucceeded(b []byte, channel string, members []Member) []byte {
	unique := members
	if hasDuplicateIDs(members) {
		unique = make([]Member, 0, len(members))
		seen := make(map[string]bool, len(members))
		for _, m := range members {
			if !seen[m.UserID] {
				seen[m.UserID] = true
				unique = append(unique, m)
			}
		}
	}
	inner := make([]byte, 0, 64+48*len(unique))
	inner = append(inner, `{"presence":{"ids":[`...)
	for i, m := range unique {
		if i > 0 {
			inner = append(inner, ',')
		}
		inner = appendJSONString(inner, m.UserID)
	}
	inner = append(inner, `],"hash":{`...)
	for i, m := range unique {
		if i > 0 {
			inner = append(inner, ',')
		}
		inner = appendJSONString(inner, m.UserID)
		inner = append(inner, ':')
		inner = appendInfo(inner, m.Info)
	}
	inner = append(inner, `},"count":`...)
	inner = strconv.AppendInt(inner, int64(len(unique)), 10)
	inner = append(inner, `}}`...)

	b = append(b, `{"event":"pusher_internal:subscription_succeeded","data":`...)
	b = appendJSONString(b, inner)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, channel)
	return append(b, '}')
}

// hasDuplicateIDs avoids a map in the common case of distinct members; the
// quadratic scan only runs on small lists.
func hasDuplicateIDs(members []Member) bool {
	if len(members) > 64 {
		return true // let the map decide
	}
	for i := range members {
		for j := i + 1; j < len(members); j++ {
			if members[i].UserID == members[j].UserID {
				return true
			}
		}
	}
	return false
}

// AppendMemberAdded appends the message telling a presence channel's other
// subscribers that a member joined:
// data is {"user_id":"…","user_info":…} as a string, user_info left out
// when the member has none.
func AppendMemberAdded(b []byte, channel string, m Member) []byte {
	inner := make([]byte, 0, 32+len(m.UserID)+len(m.Info))
	inner = append(inner, `{"user_id":`...)
	inner = appendJSONString(inner, m.UserID)
	if len(m.Info) > 0 {
		inner = append(inner, `,"user_info":`...)
		inner = appendInfo(inner, m.Info)
	}
	inner = append(inner, '}')
	b = append(b, `{"event":"pusher_internal:member_added","data":`...)
	b = appendJSONString(b, inner)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, channel)
	return append(b, '}')
}

// AppendMemberRemoved appends the message telling a presence channel's
// subscribers that a member's last connection left: data is
// {"user_id":"…"} as a string.
func AppendMemberRemoved(b []byte, channel, userID string) []byte {
	b = append(b, `{"event":"pusher_internal:member_removed","data":"{\"user_id\":`...)
	b = appendNestedString(b, userID)
	b = append(b, `}","channel":`...)
	b = appendJSONString(b, channel)
	return append(b, '}')
}

// AppendEvent appends a channel event: {"event":"…","data":"…","channel":"…"},
// data being the event's data string (the HTTP API's data, as the
// publisher encoded it) escaped into a JSON string.
func AppendEvent(b []byte, event, channel string, data []byte) []byte {
	b = append(b, `{"event":`...)
	b = appendJSONString(b, event)
	b = append(b, `,"data":`...)
	b = appendJSONString(b, data)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, channel)
	return append(b, '}')
}

// AppendClientEvent appends a client event relayed to a channel's other
// subscribers, as AppendEvent, with "user_id" last when userID is not empty:
// Pusher adds the sender's user_id to client events on presence channels.
func AppendClientEvent(b []byte, event, channel string, data []byte, userID string) []byte {
	b = AppendEvent(b, event, channel, data)
	if userID == "" {
		return b
	}
	b = b[:len(b)-1] // reopen the object
	b = append(b, `,"user_id":`...)
	b = appendJSONString(b, userID)
	return append(b, '}')
}

// appendInfo appends a member's info, or null when it has none or holds
// something that is not JSON: a Member built by hand must not break the
// frame every subscriber parses.
func appendInfo(b []byte, info json.RawMessage) []byte {
	if len(info) == 0 || !json.Valid(info) {
		return append(b, "null"...)
	}
	return append(b, info...)
}

// appendNestedString appends s as a JSON string inside a JSON string: the
// inner encoding's quotes and escapes escaped once more.
func appendNestedString(b []byte, s string) []byte {
	var scratch [64]byte
	inner := appendJSONString(scratch[:0], s)
	outer := appendJSONString(b, inner)
	// Drop the outer quotes: the caller is already inside a string.
	copy(outer[len(b):], outer[len(b)+1:len(outer)-1])
	return outer[:len(outer)-2]
}
