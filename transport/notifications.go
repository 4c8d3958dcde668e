package transport

import (
	"log/slog"
	"net/http"
	"time"

	"notification-service/broker"
	"notification-service/publish"
)

// The notifications resource: POST /api/v1/notifications/send publishes at
// once; its twin POST /api/v1/notifications/schedule (schedules.go) reads
// the same body through the same prelude.

type sendResponse struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
}

// notificationPost is a send or schedule request past its prelude.
type notificationPost struct {
	req   notificationRequest
	key   idempotencyKey
	ns    []broker.Notification
	users []string
}

// readNotificationPost is the prelude send and schedule share: the
// sender's rate, the body, its Idempotency-Key, the notifications it asks
// for (with the id derived from the key), and the rate of each addressed
// user; the rates are for callers other than the backend holding the API
// key (fromBackend). ok is false when it has answered the request already.
// extra checks what only one of the two endpoints allows (before any
// user's rate is spent); nil checks nothing.
func (s *Server) readNotificationPost(w http.ResponseWriter, r *http.Request, extra func(*notificationRequest) *apiError) (notificationPost, bool) {
	var p notificationPost
	limited := !fromBackend(r)
	if limited {
		if e := s.allowSendFrom(r); e != nil {
			writeError(w, e)
			return p, false
		}
	}
	body, e := readBody(w, r, s.opts.MaxBodyBytes)
	if e == nil {
		e = decodeJSON(body, &p.req, s.opts.MaxJSONDepth)
	}
	if e == nil && extra != nil {
		e = extra(&p.req)
	}
	if e == nil {
		p.key, e = readIdempotencyKey(r, body)
	}
	if e == nil {
		p.ns, e = p.req.toNotifications(p.key.notificationID(), s.opts.MaxChannels)
	}
	if e == nil {
		p.users = publish.UserIDs(p.ns)
		if limited {
			e = s.allowSendTo(p.users)
		}
	}
	if e != nil {
		writeError(w, e)
		return p, false
	}
	return p, true
}

func (s *Server) handleSend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.readNotificationPost(w, r, func(req *notificationRequest) *apiError {
			if req.ScheduledAt != nil {
				return badRequest("unknown_field", "scheduled_at", "scheduled_at belongs to /api/v1/notifications/schedule")
			}
			return nil
		})
		if !ok {
			return
		}
		s.idempotent(w, r, p.key, func() (int, any, error) {
			out, err := s.publisher.Publish(r.Context(), publish.SourceAPI, p.ns, slog.String("remote_addr", r.RemoteAddr))
			if err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, sendResponse{ID: out[0].ID, Timestamp: out[0].Timestamp}, nil
		})
	})
}
