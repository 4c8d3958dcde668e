package laravel

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
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

// checkJSONText refuses, in one pass, what encoding/json would let through
// silently or what costs to hold: invalid UTF-8 and \u escapes of unpaired
// surrogates (both decoded as U+FFFD, while the raw payload kept for clients
// still holds them) and nesting deeper than maxDepth. It walks values
// outside strings and hands each string to stringEnd. field names raw in
// the error.
func checkJSONText(field string, raw []byte, maxDepth int) error {
	if !utf8.Valid(raw) {
		return refuse(field, "not valid UTF-8")
	}
	depth := 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			end, ok := stringEnd(raw, i+1)
			if !ok {
				return refuse(field, "unpaired UTF-16 surrogate escape; send valid Unicode")
			}
			i = end
		case '{', '[':
			if depth++; depth > maxDepth {
				return refuse(field, "nests deeper than %d levels", maxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// stringEnd returns the index of the quote closing the string whose
// content starts at raw[i] (len(raw) if it never closes: the decoder
// reports that), and false if the string holds an escaped surrogate that is
// not a high half immediately followed by an escaped low half.
func stringEnd(raw []byte, i int) (int, bool) {
	pendingHigh := false // the previous escape was a high surrogate
	for ; i < len(raw); i++ {
		c := raw[i]
		if c == '"' {
			return i, !pendingHigh
		}
		if c != '\\' {
			if pendingHigh {
				return i, false
			}
			continue
		}
		r, isU := unicodeEscape(raw[i:])
		switch {
		case isU && r >= 0xD800 && r < 0xDC00: // high half
			if pendingHigh {
				return i, false
			}
			pendingHigh = true
			i += 5
		case isU && r >= 0xDC00 && r <= 0xDFFF: // low half
			if !pendingHigh {
				return i, false
			}
			pendingHigh = false
			i += 5
		case pendingHigh:
			return i, false
		case isU:
			i += 5
		default:
			i++ // a two-byte escape such as \" or \\
		}
	}
	return i, !pendingHigh
}

// unicodeEscape decodes a \uXXXX escape at the start of b.
func unicodeEscape(b []byte) (rune, bool) {
	if len(b) < 6 || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}
