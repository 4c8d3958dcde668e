package laravel

import (
	"encoding/json"
	"math"
)

// redisMessage is what Laravel's RedisBroadcaster publishes on each of the
// broadcast's channels, json_encode(['event' => …, 'data' => …, 'socket' =>
// …]): data keeps its own copy of "socket", and socket is null unless the
// event was sent toOthers().
type redisMessage struct {
	Event  json.RawMessage `json:"event"`
	Data   json.RawMessage `json:"data"`
	Socket json.RawMessage `json:"socket"`
}

// decodeMessage reads one message of the redis broadcaster, published on
// channels (Laravel's prefix already stripped).
func decodeMessage(body []byte, channels []string) (Broadcast, error) {
	// The whole message, so that event and socket get the checks data
	// gets; the mapping bounds data's depth.
	if err := checkJSONText("message", body, math.MaxInt); err != nil {
		return Broadcast{}, err
	}
	var m redisMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return Broadcast{}, refuse("message", "not a JSON object {\"event\",\"data\",\"socket\"}")
	}
	b := Broadcast{Channels: channels, Data: m.Data}
	if err := optionalString(m.Event, &b.Event); err != nil {
		return Broadcast{}, refuse("event", "must be a string")
	}
	if err := optionalString(m.Socket, &b.Socket); err != nil {
		return Broadcast{}, refuse("socket", "must be a string or null")
	}
	return b, nil
}

// optionalString decodes a JSON string into s; absent and null leave it
// empty.
func optionalString(raw json.RawMessage, s *string) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, s)
}
