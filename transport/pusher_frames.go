package transport

import (
	"bytes"
	"encoding/json"

	"github.com/coder/websocket"

	"notification-service/broker"
	"notification-service/laravel"
	"notification-service/pusher"
)

// How frames look to a Pusher client (laravel-echo with pusher-js): the
// framer of the Pusher transport.
//
//   - ready is pusher:connection_established, with the connection id as its
//     socket id;
//   - a broadcast on channels is one event per channel the connection holds
//     (Pusher's clients listen per channel), named by the notification's
//     type, its data the notification's data with id, type, title, message
//     and timestamp added where the data has no such field (a Laravel event's
//     payload arrives as Laravel sent it; a REST send arrives whole);
//   - a notification addressed to a user is Laravel's
//     BroadcastNotificationCreated on the user's private channel, which
//     Echo's .notification() receives;
//   - Pusher protocol messages (subscription answers, members joining and
//     leaving, client events) go out as they are;
//   - the service's other control events (read, subscribed, reset, ...)
//     have no Pusher form and are not sent.

// pusherWriter frames for a Pusher connection: wsWriter's framing and
// close, with the Pusher encoding and the session it reads channels from.
type pusherWriter struct {
	wsWriter
	sess *pusherSession
}

func (pw *pusherWriter) appendFrame(b []byte, f *broker.Frame) []byte {
	switch {
	case f.Event == pusherProtocolFrame:
		return appendWSFrame(b, wsOpText, f.JSON)
	case f.Event == "ready":
		return appendWSFrame(b, wsOpText, pusher.AppendConnectionEstablished(nil, pw.sess.c.id, pusher.DefaultActivityTimeout))
	case f.Event != "" || f.Seq == 0:
		return b
	}
	note := pw.sess.srv.pusherNote(f)
	if note == nil {
		return b
	}
	if note.userID != "" {
		sess := pw.sess
		sess.mu.Lock()
		mine := sess.userID == note.userID
		sess.mu.Unlock()
		if mine {
			b = append(b, note.userFrame...)
		}
		return b
	}
	for i, ch := range note.channels {
		if pw.sess.subscribed(ch) {
			b = append(b, note.frames[i]...)
		}
	}
	return b
}

// appendHeartbeat is a WebSocket ping and a pusher:ping: the ping frame for
// the browser (which answers it by itself), the message for clients that
// only speak the protocol.
func (pw *pusherWriter) appendHeartbeat(b []byte) []byte {
	b = appendWSFrame(b, wsOpPing, nil)
	return appendWSFrame(b, wsOpText, pusher.AppendPing(nil))
}

// end leaves the connection's channels (presence members removed from the
// others' lists), then closes with the protocol's code for the reason, so
// pusher-js knows whether and when to reconnect.
func (pw *pusherWriter) end(r reason) {
	pw.sess.leaveAll()
	e := endingOf(r)
	switch {
	case e.pusherClose != pusher.NoCode:
		_ = pw.ws.Close(websocket.StatusCode(e.pusherClose), string(r))
	case e.wsClose != 0:
		_ = pw.ws.Close(e.wsClose, string(r))
	}
}

// pusherNote is a notification frame encoded for Pusher connections, once
// for all of them: one WebSocket message per channel, or the user's one.
type pusherNote struct {
	userID    string
	userFrame []byte
	channels  []string
	frames    [][]byte
}

// pusherNote reads f's notification and encodes it for Pusher clients,
// once per frame however many Pusher connections get it (broker.Frame.Memo).
// nil: f does not hold a notification this can read.
func (s *Server) pusherNote(f *broker.Frame) *pusherNote {
	note, _ := f.Memo(pusherProtocolFrame, func() any {
		var n struct {
			ID        string          `json:"id"`
			Type      string          `json:"type"`
			Title     string          `json:"title"`
			Message   string          `json:"message"`
			UserID    string          `json:"user_id"`
			Channels  []string        `json:"channels"`
			Data      json.RawMessage `json:"data"`
			Timestamp string          `json:"timestamp"`
		}
		if err := json.Unmarshal(f.JSON, &n); err != nil {
			return (*pusherNote)(nil)
		}
		fields := map[string]any{"id": n.ID, "type": n.Type, "title": n.Title, "message": n.Message, "timestamp": n.Timestamp}
		out := &pusherNote{userID: n.UserID}
		if n.UserID != "" {
			ch := s.userChannelPrefix() + n.UserID
			out.userFrame = appendWSFrame(nil, wsOpText, pusher.AppendEvent(nil, laravel.NotificationEvent, ch, mergeFields(n.Data, fields)))
			return out
		}
		for _, ch := range n.Channels {
			data := n.Data
			if pusher.KindOf(ch) != pusher.Encrypted {
				data = mergeFields(n.Data, fields)
			}
			out.channels = append(out.channels, ch)
			out.frames = append(out.frames, appendWSFrame(nil, wsOpText, pusher.AppendEvent(nil, n.Type, ch, data)))
		}
		return out
	}).(*pusherNote)
	return note
}

// mergeFields is data (a JSON object, or nothing) with fields added where
// it has no such key and their value is not empty: the payload a Pusher
// client gets, as Laravel's BroadcastNotificationCreated merges id and type
// into a notification's data.
func mergeFields(data json.RawMessage, fields map[string]any) []byte {
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &obj); err != nil {
			return data // not an object: as it came
		}
	}
	for k, v := range fields {
		if _, has := obj[k]; has || v == "" {
			continue
		}
		enc, _ := json.Marshal(v)
		obj[k] = enc
	}
	out, _ := json.Marshal(obj)
	return out
}

// userChannelPrefix is what a user's private channel starts with:
// private-App.Models.User. (LARAVEL_USER_CHANNEL_PREFIX).
func (s *Server) userChannelPrefix() string {
	prefix := s.opts.Mapping.UserChannelPrefix
	if prefix == "" {
		prefix = laravel.DefaultUserChannelPrefix
	}
	return pusher.PrivatePrefix + prefix
}
