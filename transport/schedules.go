package transport

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"notification-service/broker"
	"notification-service/schedule"
)

// The schedules resource: POST /api/v1/notifications/schedule stores a
// notification to publish at a time (the scheduler fires it through the one
// publish path); /api/v1/schedules lists (a page at a time), reads and
// cancels what waits.

// scheduleView is a scheduled item as the API shows it; the first four
// fields are the seed's schedule response.
type scheduleView struct {
	ID          string          `json:"id"`
	UserID      string          `json:"user_id,omitempty"`
	ScheduledAt string          `json:"scheduled_at"`
	CreatedAt   time.Time       `json:"created_at"`
	UserIDs     []string        `json:"user_ids,omitempty"`
	Channels    []string        `json:"channels,omitempty"`
	Type        string          `json:"type"`
	Title       string          `json:"title,omitempty"`
	Message     string          `json:"message,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	Status      string          `json:"status"`
}

func viewOf(it schedule.Item) scheduleView {
	n := it.Notifications[0]
	v := scheduleView{
		ID: it.ID, ScheduledAt: it.ScheduledAt.Format(time.RFC3339Nano), CreatedAt: it.CreatedAt,
		Channels: n.Channels, Type: n.Type, Title: n.Title, Message: n.Message, Data: n.Data, Status: "pending",
	}
	if users := it.UserIDs(); len(users) == 1 {
		v.UserID = users[0]
	} else {
		v.UserIDs = users
	}
	return v
}

func (s *Server) handleSchedule() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := broker.Now()
		var at time.Time
		p, ok := s.readNotificationPost(w, r, func(req *notificationRequest) *apiError {
			var e *apiError
			at, e = parseScheduledAt(req.ScheduledAt, now)
			return e
		})
		if !ok {
			return
		}
		id := p.ns[0].ID
		s.idempotent(w, r, p.key, func() (int, any, error) {
			it := schedule.Item{ID: id, ScheduledAt: at, CreatedAt: now, Notifications: p.ns}
			if err := s.sched.Add(r.Context(), it); err != nil {
				if !errors.Is(err, schedule.ErrDuplicate) {
					return 0, nil, err // a bound reached, Redis away: nothing stored
				}
				// Another attempt of this request (same Idempotency-Key,
				// same derived id) added it already: answer what it did.
				existing, getErr := s.sched.Get(r.Context(), id)
				if getErr != nil {
					return 0, nil, err
				}
				it = existing
			}
			s.audit.Record("schedule", slog.String("schedule_id", id), slog.Any("user_ids", it.UserIDs()),
				slog.String("type", p.ns[0].Type), slog.Any("channels", p.ns[0].Channels), slog.Time("scheduled_at", at), slog.String("remote_addr", r.RemoteAddr))
			s.metrics.NotificationAccepted("schedule")
			return http.StatusCreated, viewOf(it), nil
		})
	})
}

// scheduleList is one page of GET /api/v1/schedules: total counts every
// pending schedule matching the filter, and next_cursor (null on the last
// page) continues the listing.
type scheduleList struct {
	Schedules  []scheduleView `json:"schedules"`
	Total      int            `json:"total"`
	NextCursor *string        `json:"next_cursor"`
}

func (s *Server) handleListSchedules() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, e := s.scheduleQuery(r)
		if e != nil {
			writeError(w, e)
			return
		}
		page, err := s.sched.List(r.Context(), q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resp := scheduleList{Schedules: make([]scheduleView, 0, len(page.Items)), Total: page.Total}
		for _, it := range page.Items {
			resp.Schedules = append(resp.Schedules, viewOf(it))
		}
		if !page.Next.IsZero() {
			next := formatScheduleCursor(page.Next)
			resp.NextCursor = &next
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

func (s *Server) scheduleQuery(r *http.Request) (schedule.Query, *apiError) {
	v := r.URL.Query()
	q := schedule.Query{UserID: v.Get("user_id")}
	if q.UserID != "" {
		if e := userParam("user_id", q.UserID); e != nil {
			return q, e
		}
	}
	var e *apiError
	if q.Limit, e = pageSize(v, s.opts.MaxPageSize); e != nil {
		return q, e
	}
	if raw := v.Get("cursor"); raw != "" {
		c, ok := parseScheduleCursor(raw)
		if !ok {
			return q, invalid("cursor", "cursor must be a next_cursor value from an earlier page")
		}
		q.After = c
	}
	return q, nil
}

// A schedules cursor is a place in the listing order (the millisecond of
// scheduled_at, then the id), not an item, so it stays valid whatever
// happens to the items. Clients get it base64url-encoded, opaque, so its
// form may change.
func formatScheduleCursor(c schedule.Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.At, 10) + ":" + c.ID))
}

// maxCursorLen bounds what parseScheduleCursor decodes: a 20-digit time and
// the longest id, encoded.
const maxCursorLen = 200

func parseScheduleCursor(raw string) (schedule.Cursor, bool) {
	if len(raw) > maxCursorLen {
		return schedule.Cursor{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return schedule.Cursor{}, false
	}
	at, id, ok := strings.Cut(string(b), ":")
	ms, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || !idPattern.MatchString(id) {
		return schedule.Cursor{}, false
	}
	return schedule.Cursor{At: ms, ID: id}, true
}

func (s *Server) handleGetSchedule() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		it, err := s.sched.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, viewOf(it))
	})
}

func (s *Server) handleCancelSchedule() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		it, err := s.sched.Cancel(r.Context(), r.PathValue("id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.audit.Record("cancel", slog.String("schedule_id", it.ID), slog.Any("user_ids", it.UserIDs()),
			slog.String("type", it.Notifications[0].Type), slog.Any("channels", it.Notifications[0].Channels), slog.String("remote_addr", r.RemoteAddr))
		v := viewOf(it)
		v.Status = "cancelled"
		writeJSON(w, http.StatusOK, v)
	})
}
