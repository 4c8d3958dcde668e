package audit

import (
	"log/slog"
	"slices"
	"time"
)

// Event is an audit event as the live trail keeps it: who and what it is
// about lifted out for filtering (users, type, channels), the rest of its
// attributes in Fields.
type Event struct {
	// ID orders the events of a trail; the store assigns it.
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Action   string         `json:"action"`
	Instance string         `json:"instance"`
	UserIDs  []string       `json:"user_ids,omitempty"`
	Type     string         `json:"type,omitempty"`
	Channels []string       `json:"channels,omitempty"`
	Fields   map[string]any `json:"fields,omitempty"`
}

// eventOf lifts an event out of a record's attributes.
func eventOf(at time.Time, instance, action string, attrs []slog.Attr) Event {
	e := Event{Time: at, Action: action, Instance: instance}
	for _, a := range attrs {
		v := a.Value.Resolve()
		switch a.Key {
		case "user_id":
			if s := v.String(); s != "" {
				e.UserIDs = append(e.UserIDs, s)
			}
			continue
		case "user_ids":
			if ids, ok := v.Any().([]string); ok {
				e.UserIDs = append(e.UserIDs, ids...)
				continue
			}
		case "type":
			e.Type = v.String()
			continue
		case "channels":
			if chs, ok := v.Any().([]string); ok {
				e.Channels = slices.Clone(chs)
				continue
			}
		}
		if e.Fields == nil {
			e.Fields = make(map[string]any, len(attrs))
		}
		switch v.Kind() {
		case slog.KindDuration:
			e.Fields[a.Key] = v.Duration().String()
		case slog.KindGroup, slog.KindLogValuer:
			e.Fields[a.Key] = v.String()
		default:
			e.Fields[a.Key] = v.Any()
		}
	}
	return e
}

// Filter selects events; an empty field selects any.
type Filter struct {
	Action  string
	UserID  string
	Type    string
	Channel string
}

// Matches says whether e is selected by f.
func (f Filter) Matches(e Event) bool {
	return (f.Action == "" || e.Action == f.Action) &&
		(f.UserID == "" || slices.Contains(e.UserIDs, f.UserID)) &&
		(f.Type == "" || e.Type == f.Type) &&
		(f.Channel == "" || slices.Contains(e.Channels, f.Channel))
}
