package laravel

import (
	"bytes"
	"encoding/json"
	"errors"

	"notification-service/internal/jsontext"
)

// payload is a broadcast's data as the service will store it, with the few
// top-level string fields the mapping reads.
type payload struct {
	// object is the compacted JSON object without "socket"; nil when
	// there is nothing left.
	object json.RawMessage
	// strings holds the top-level title, message, id and type when they
	// are JSON strings.
	strings map[string]string
}

func (p payload) title() string {
	if t := p.strings["title"]; fitsTitle(t) {
		return t
	}
	return ""
}

func (p payload) message() string { return p.strings["message"] }

// parsePayload reads a broadcast's data: a JSON object, [] (what PHP's
// json_encode makes of an empty array) or nothing. It refuses what the
// service refuses in a REST body's data: more than maxBytes, invalid UTF-8,
// escapes of unpaired surrogates, nesting past maxDepth (the data's own
// object counting as level 2, as inside a body), anything but an object.
func parsePayload(raw json.RawMessage, maxBytes, maxDepth int) (payload, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > maxBytes {
		return payload{}, refuse("data", "larger than %d bytes", maxBytes)
	}
	if err := checkJSONText("data", raw, maxDepth-1); err != nil {
		return payload{}, err
	}
	switch {
	case len(raw) == 0, string(raw) == "null":
		return payload{}, nil
	case raw[0] == '[':
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil && len(list) == 0 {
			return payload{}, nil
		}
	case raw[0] == '{':
		return readObject(raw)
	}
	return payload{}, refuse("data", "must be a JSON object (or [] for none)")
}

// readObject rewrites the object without its "socket" keys, keeping the
// order of the others (clients see Laravel's order), and picks the strings
// the mapping reads.
func readObject(raw []byte) (payload, error) {
	malformed := refuse("data", "malformed JSON")
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // the opening brace
		return payload{}, malformed
	}
	p := payload{strings: map[string]string{}}
	var out bytes.Buffer
	out.WriteByte('{')
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return payload{}, malformed
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return payload{}, malformed
		}
		if key == "socket" {
			continue
		}
		switch key {
		case "title", "message", "id", "type":
			var s string
			if json.Unmarshal(value, &s) == nil {
				p.strings[key] = s
			}
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		k, _ := json.Marshal(key) // a decoded string always encodes
		out.Write(k)
		out.WriteByte(':')
		out.Write(value)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return payload{}, malformed
	}
	if dec.More() {
		return payload{}, refuse("data", "unexpected data after the JSON object")
	}
	out.WriteByte('}')
	if out.Len() == 2 {
		return payload{strings: p.strings}, nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out.Bytes()); err != nil {
		return payload{}, malformed
	}
	p.object = compact.Bytes()
	return p, nil
}

// checkJSONText refuses, before decoding, what encoding/json would let
// through silently or what costs to hold (jsontext.Check): invalid UTF-8
// and \u escapes of unpaired surrogates (both decoded as U+FFFD, while the
// raw payload kept for clients still holds them) and nesting deeper than
// maxDepth. field names raw in the error.
func checkJSONText(field string, raw []byte, maxDepth int) error {
	err := jsontext.Check(raw, maxDepth)
	var deep *jsontext.DepthError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jsontext.ErrNotUTF8):
		return refuse(field, "not valid UTF-8")
	case errors.As(err, &deep):
		return refuse(field, "nests deeper than %d levels", deep.Max)
	}
	return refuse(field, "unpaired UTF-16 surrogate escape; send valid Unicode")
}
