package transport

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"time"

	"notification-service/broker"
	"notification-service/schedule"
)

// The schedules resource: POST /api/v1/notifications/schedule stores a
// notification to publish at a time (the scheduler fires it through the one
// publish path); /api/v1/schedules lists, reads and cancels what waits.

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
				// Another attempt of this request (same Idempotency-Key,
				// same derived id) added it already: answer what it did.
				existing, getErr := s.sched.Get(r.Context(), id)
				if !errors.Is(err, schedule.ErrDuplicate) || getErr != nil {
					return 0, nil, err
				}
				it = existing
			}
			s.audit.Record("schedule", slog.String("schedule_id", id), slog.Any("user_ids", it.UserIDs()),
				slog.Any("channels", p.ns[0].Channels), slog.Time("scheduled_at", at), slog.String("remote_addr", r.RemoteAddr))
			s.metrics.NotificationAccepted("schedule")
			return http.StatusCreated, viewOf(it), nil
		})
	})
}

func (s *Server) handleListSchedules() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID := r.URL.Query().Get("user_id")
		if userID != "" {
			if e := userParam("user_id", userID); e != nil {
				writeError(w, e)
				return
			}
		}
		page, err := s.sched.List(r.Context(), schedule.Query{UserID: userID, Limit: math.MaxInt32})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		views := make([]scheduleView, 0, len(page.Items))
		for _, it := range page.Items {
			views = append(views, viewOf(it))
		}
		writeJSON(w, http.StatusOK, map[string]any{"schedules": views, "total": len(views)})
	})
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
		s.audit.Record("cancel", slog.String("schedule_id", it.ID), slog.Any("user_ids", it.UserIDs()), slog.String("remote_addr", r.RemoteAddr))
		v := viewOf(it)
		v.Status = "cancelled"
		writeJSON(w, http.StatusOK, v)
	})
}
