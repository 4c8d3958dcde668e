package streamread

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// PusherMessage is one message of the Pusher Channels protocol as a server
// sends it: {"event":"…","data":"…","channel":"…"}. Data is the data string
// decoded once, so it holds the JSON the publisher encoded (Pusher's
// "double encoding"); when data is not a string (pusher:error sends an
// object) it is that value's raw text. Its slices are valid until the
// parser's next call.
type PusherMessage struct {
	Event, Channel, Data []byte
}

// PusherParser reads Pusher messages into buffers it reuses, so a stream of
// events costs no allocation once the buffers have grown to the largest
// message. It reads the top-level fields it knows, in any order, and skips
// the others (user_id of a client event).
type PusherParser struct {
	key, event, channel, data []byte
}

var errPusherFrame = errors.New("not a Pusher message (a JSON object)")

// Parse reads one message.
func (p *PusherParser) Parse(frame []byte) (PusherMessage, error) {
	p.event, p.channel, p.data = p.event[:0], p.channel[:0], p.data[:0]
	var msg PusherMessage
	i := skipSpace(frame, 0)
	if i >= len(frame) || frame[i] != '{' {
		return msg, errPusherFrame
	}
	i = skipSpace(frame, i+1)
	if i < len(frame) && frame[i] == '}' {
		return msg, nil
	}
	for {
		var err error
		if i >= len(frame) || frame[i] != '"' {
			return msg, fmt.Errorf("%w: want a key at byte %d", errPusherFrame, i)
		}
		if p.key, i, err = appendUnquoted(p.key[:0], frame, i); err != nil {
			return msg, err
		}
		if i = skipSpace(frame, i); i >= len(frame) || frame[i] != ':' {
			return msg, fmt.Errorf("%w: want a colon at byte %d", errPusherFrame, i)
		}
		i = skipSpace(frame, i+1)
		var field *[]byte
		switch string(p.key) {
		case "event":
			field = &p.event
		case "channel":
			field = &p.channel
		case "data":
			field = &p.data
		}
		switch {
		case i < len(frame) && frame[i] == '"' && field != nil:
			if *field, i, err = appendUnquoted((*field)[:0], frame, i); err != nil {
				return msg, err
			}
		default:
			start := i
			if i, err = skipValue(frame, i); err != nil {
				return msg, err
			}
			if field != nil {
				*field = append((*field)[:0], frame[start:i]...)
			}
		}
		i = skipSpace(frame, i)
		if i >= len(frame) {
			return msg, fmt.Errorf("%w: cut short", errPusherFrame)
		}
		if frame[i] == '}' {
			return PusherMessage{Event: p.event, Channel: p.channel, Data: p.data}, nil
		}
		if frame[i] != ',' {
			return msg, fmt.Errorf("%w: want a comma at byte %d", errPusherFrame, i)
		}
		i = skipSpace(frame, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// appendUnquoted decodes the JSON string starting at b[i] (its opening
// quote) onto dst and returns the index after its closing quote.
func appendUnquoted(dst, b []byte, i int) ([]byte, int, error) {
	i++ // the opening quote
	for i < len(b) {
		// Copy the run up to the next quote or escape in one go.
		j := i
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		dst = append(dst, b[i:j]...)
		if i = j; i >= len(b) {
			break
		}
		if b[i] == '"' {
			return dst, i + 1, nil
		}
		if i+1 >= len(b) {
			break
		}
		switch c := b[i+1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(b, i+2)
			if !ok {
				return dst, i, fmt.Errorf("%w: bad \\u escape at byte %d", errPusherFrame, i)
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if low, ok := hex4(b, i+2); ok && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if pair := utf16.DecodeRune(r, low); pair != utf8.RuneError {
						r = pair
						i += 6
					}
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, i, fmt.Errorf("%w: bad escape at byte %d", errPusherFrame, i)
		}
		i += 2
	}
	return dst, i, fmt.Errorf("%w: unterminated string", errPusherFrame)
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// skipValue returns the index after the JSON value starting at b[i]: a
// string, or anything else up to the comma or brace that ends it at this
// level (objects and arrays nested, strings inside them skipped whole).
func skipValue(b []byte, i int) (int, error) {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return i, fmt.Errorf("%w: unterminated string", errPusherFrame)
			}
			i = j + 1
			if depth == 0 {
				return i, nil
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, nil // the enclosing object's end
			}
			if depth--; depth == 0 {
				return i + 1, nil
			}
		case ',':
			if depth == 0 {
				return i, nil
			}
		}
		i++
	}
	return i, fmt.Errorf("%w: cut short", errPusherFrame)
}
