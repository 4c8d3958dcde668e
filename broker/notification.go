// Package broker owns the Notification type, the routing rule, the local
// fan-out hub of live connections and the bus that carries notifications to
// every instance's hub. It knows nothing of HTTP, SSE or WebSocket framing
// beyond the one JSON encoding every transport shares, and nothing of how the
// inbox or the scheduler store their data.
package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Notification is what a backend sends and a browser receives. UserID is
// empty on broadcasts. Seq is the bus's global sequence number, assigned when
// the notification is published; it orders every notification and is what a
// resume cursor points at.
type Notification struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Title     string          `json:"title,omitempty"`
	Message   string          `json:"message,omitempty"`
	UserID    string          `json:"user_id,omitempty"`
	Channels  []string        `json:"channels,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
	Seq       uint64          `json:"-"`
	// Exclude is a connection id that must not receive the notification:
	// Laravel's socket id (toOthers, X-Socket-ID), the connection whose
	// own action caused the broadcast. Never sent to clients.
	Exclude string `json:"-"`
}

// Bounds every way in holds a notification to (REST sends, Laravel's
// broadcasts): a type is an event name (Pusher allows 200 characters, and
// Laravel's class names such as App\Notifications\Orders\ShipmentDelayed
// run long), a title a line of text.
const (
	MaxTypeLen  = 200
	MaxTitleLen = 1024
)

// NewID returns a time-ordered UUID (version 7), so ids sort roughly by
// creation time in logs and databases.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does; nothing
		// sensible can continue without randomness.
		panic(fmt.Sprintf("broker: new id: %v", err))
	}
	return id.String()
}

// Now is the timestamp every notification carries: UTC, millisecond
// precision, so it survives a round trip through JSON and Redis unchanged.
func Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// Cursor is a resume position: everything published after Seq in the bus
// lifetime identified by Epoch. A memory bus gets a new epoch at every start,
// so a cursor from before a restart is recognised as unknown rather than
// silently pointing at unrelated notifications.
type Cursor struct {
	Epoch string
	Seq   uint64
}

// ErrBadCursor means a cursor string could not be parsed.
var ErrBadCursor = errors.New("broker: malformed cursor")

// String is the opaque form sent to clients as an SSE id and a WebSocket
// "cursor" field.
func (c Cursor) String() string { return c.Epoch + "-" + strconv.FormatUint(c.Seq, 10) }

// ParseCursor reads a cursor produced by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	if len(s) > 64 {
		return Cursor{}, ErrBadCursor
	}
	epoch, seq, ok := strings.Cut(s, "-")
	if !ok || epoch == "" || !isAlnum(epoch) {
		return Cursor{}, ErrBadCursor
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{Epoch: epoch, Seq: n}, nil
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Frame is one message ready for a connection: encoded once and shared by
// every connection it goes to, whatever the transport. Event is empty for
// notifications (SSE's default event type, so EventSource.onmessage sees
// them) and names control events ("read", "subscribed", ...). JSON always
// carries an "event" field, so a WebSocket client can tell frames apart.
type Frame struct {
	Event  string
	Cursor string
	Seq    uint64
	JSON   []byte
	// Published is when the bus published the notification, set once per
	// notification on its live frame (zero on control frames and
	// replays): the start of the delivery latency the metrics observe.
	Published time.Time
	// Only names the one transport whose connections carry this frame
	// (a Pusher protocol message, say); empty: every transport.
	Only string

	// memo holds what transports derive from the frame (Memo).
	memoMu sync.Mutex
	memo   map[string]any
}

// Memo returns what derive makes of the frame under key, calling it on the
// first call only: a transport that speaks another format (Pusher's)
// re-encodes a frame once, however many of its connections get it. Safe
// for concurrent use; derive runs under the frame's lock, so it must not
// call Memo.
func (f *Frame) Memo(key string, derive func() any) any {
	f.memoMu.Lock()
	defer f.memoMu.Unlock()
	if v, ok := f.memo[key]; ok {
		return v
	}
	v := derive()
	if f.memo == nil {
		f.memo = make(map[string]any, 1)
	}
	f.memo[key] = v
	return v
}

// NotificationFrame encodes n for delivery with its resume cursor.
func NotificationFrame(n Notification, epoch string) (*Frame, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("broker: encode notification %s: %w", n.ID, err)
	}
	return spliceCursor(body, Cursor{Epoch: epoch, Seq: n.Seq}), nil
}

// spliceCursor turns the JSON object of a notification into its delivery
// frame, {"event":"notification","cursor":"…", <fields>}, without encoding
// the notification again. It is the frame's one head in Go; the Redis
// bus's publish script (lua/publish.lua) writes the same bytes, which the
// contract test "replayed frames equal live frames" holds it to.
func spliceCursor(body []byte, c Cursor) *Frame {
	cursor := c.String()
	const head = `{"event":"notification","cursor":"`
	buf := make([]byte, 0, len(head)+len(cursor)+2+len(body))
	buf = append(buf, head...)
	buf = append(buf, cursor...)
	buf = append(buf, `",`...)
	buf = append(buf, body[1:]...)
	return &Frame{Cursor: cursor, Seq: c.Seq, JSON: buf}
}

// EventFrame encodes a named control event. fields must marshal to a JSON
// object; "event" is added to it.
func EventFrame(event string, fields map[string]any) *Frame {
	m := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		m[k] = v
	}
	m["event"] = event
	body, err := json.Marshal(m)
	if err != nil {
		// Control events are built from plain strings, numbers and slices
		// by this program; failing to encode one is a programming error.
		panic(fmt.Sprintf("broker: encode %s event: %v", event, err))
	}
	return &Frame{Event: event, JSON: body}
}

// ErrCursorExpired means a resume cursor cannot be honoured: it comes from
// another bus lifetime, points past the newest notification, or retention
// has dropped something published after it. The client gets a "reset"
// event and refetches its inbox.
var ErrCursorExpired = errors.New("broker: cursor expired")
