package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"notification-service/broker"
	"notification-service/inbox"
	"notification-service/schedule"
)

const defaultPageSize = 50

// fail answers err in the API's error shape, logging what the client is not
// told.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := statusOf(err)
	if e.Status >= 500 {
		s.log.Error("request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	writeError(w, e)
}

// storedResponse is what an idempotency key remembers.
type storedResponse struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// idempotent runs create once per Idempotency-Key: a retry with the same key
// and body gets the first answer back (with Idempotent-Replayed: true), a
// different body under the same key gets 409. Without the header it just
// runs create.
// idNamespace names the ids derived from Idempotency-Keys.
var idNamespace = uuid.MustParse("6f1c9a52-3d0e-4f5b-9a57-2d3c8e1b7a40")

// notificationID is a new id, or, for a request with an Idempotency-Key,
// one derived from the key and the request: a retry of a send whose answer
// was lost (Redis timed out after storing it) then carries the same id, and
// the bus recognises it instead of publishing twice.
func notificationID(r *http.Request, body []byte) string {
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > 255 {
		return broker.NewID()
	}
	sum := sha256.Sum256(body)
	return uuid.NewSHA1(idNamespace, []byte(r.Method+" "+r.URL.Path+"\n"+key+"\n"+hex.EncodeToString(sum[:]))).String()
}

func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, body []byte, create func() (int, any, error)) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		status, v, err := create()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, status, v)
		return
	}
	if len(key) > 255 {
		writeError(w, invalid("Idempotency-Key", "Idempotency-Key is longer than 255 characters"))
		return
	}
	sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
	ctx := r.Context()
	prev, done, err := s.idem.Begin(ctx, key, hex.EncodeToString(sum[:]))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if done {
		var stored storedResponse
		if err := json.Unmarshal(prev, &stored); err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(stored.Status)
		_, _ = w.Write(append(stored.Body, '\n'))
		return
	}
	status, v, err := create()
	if err != nil {
		// Nothing was created: release the key so a retry runs again.
		if abortErr := s.idem.Abort(context.WithoutCancel(ctx), key); abortErr != nil {
			s.log.Error("idempotency abort", slog.Any("error", abortErr))
		}
		s.fail(w, r, err)
		return
	}
	encoded, err := json.Marshal(v)
	if err == nil {
		var stored []byte
		stored, err = json.Marshal(storedResponse{Status: status, Body: encoded})
		if err == nil {
			err = s.idem.Finish(context.WithoutCancel(ctx), key, stored)
		}
	}
	if err != nil {
		// The notification went out; a retry would now send it twice, but
		// failing this response would invite exactly that retry.
		s.log.Error("idempotency finish", slog.Any("error", err))
	}
	writeJSON(w, status, v)
}

// readNotificationRequest reads and decodes the body of send or schedule,
// returning the raw bytes too for the idempotency fingerprint.
func (s *Server) readNotificationRequest(w http.ResponseWriter, r *http.Request) ([]byte, notificationRequest, *apiError) {
	var req notificationRequest
	body, e := readBody(w, r, s.opts.MaxBodyBytes)
	if e == nil {
		e = decodeJSON(body, &req, s.opts.MaxJSONDepth)
	}
	return body, req, e
}

type sendResponse struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
}

func (s *Server) handleSend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := s.allowSendFrom(r); e != nil {
			writeError(w, e)
			return
		}
		body, req, e := s.readNotificationRequest(w, r)
		if e != nil {
			writeError(w, e)
			return
		}
		if req.ScheduledAt != nil {
			writeError(w, badRequest("unknown_field", "scheduled_at", "scheduled_at belongs to /api/v1/notifications/schedule"))
			return
		}
		ns, e := req.toNotifications(notificationID(r, body), s.opts.MaxChannels)
		if e == nil {
			e = s.allowSendTo(userIDs(ns))
		}
		if e != nil {
			writeError(w, e)
			return
		}
		s.idempotent(w, r, body, func() (int, any, error) {
			now := broker.Now()
			for i := range ns {
				ns[i].Timestamp = now
			}
			if _, err := s.bus.Publish(r.Context(), ns...); err != nil {
				return 0, nil, err
			}
			s.audit.Record("send", slog.String("notification_id", ns[0].ID), slog.Any("user_ids", userIDs(ns)),
				slog.Any("channels", ns[0].Channels), slog.String("type", ns[0].Type), slog.String("remote_addr", r.RemoteAddr))
			s.metrics.NotificationAccepted("send")
			return http.StatusCreated, sendResponse{ID: ns[0].ID, Timestamp: now}, nil
		})
	})
}

func userIDs(ns []broker.Notification) []string {
	var ids []string
	for _, n := range ns {
		if n.UserID != "" {
			ids = append(ids, n.UserID)
		}
	}
	return ids
}

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
		if e := s.allowSendFrom(r); e != nil {
			writeError(w, e)
			return
		}
		body, req, e := s.readNotificationRequest(w, r)
		if e != nil {
			writeError(w, e)
			return
		}
		now := broker.Now()
		at, e := parseScheduledAt(req.ScheduledAt, now)
		if e != nil {
			writeError(w, e)
			return
		}
		id := notificationID(r, body)
		ns, e := req.toNotifications(id, s.opts.MaxChannels)
		if e == nil {
			e = s.allowSendTo(userIDs(ns))
		}
		if e != nil {
			writeError(w, e)
			return
		}
		s.idempotent(w, r, body, func() (int, any, error) {
			it := schedule.Item{ID: id, ScheduledAt: at, CreatedAt: now, Notifications: ns}
			if err := s.sched.Add(r.Context(), it); err != nil {
				// The retry of an Add whose answer was lost (same
				// Idempotency-Key, same derived id): it is there already.
				existing, getErr := s.sched.Get(r.Context(), id)
				if !errors.Is(err, schedule.ErrDuplicate) || getErr != nil {
					return 0, nil, err
				}
				it = existing
			}
			s.audit.Record("schedule", slog.String("schedule_id", id), slog.Any("user_ids", it.UserIDs()),
				slog.Any("channels", ns[0].Channels), slog.Time("scheduled_at", at), slog.String("remote_addr", r.RemoteAddr))
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
		items, err := s.sched.List(r.Context(), userID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		views := make([]scheduleView, 0, len(items))
		for _, it := range items {
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

type inboxResponse struct {
	UserID        string        `json:"user_id"`
	Notifications []inbox.Entry `json:"notifications"`
	Total         int           `json:"total"`
	Unread        int           `json:"unread"`
	NextCursor    *string       `json:"next_cursor"`
}

func (s *Server) handleListInbox() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID := r.PathValue("user_id")
		if e := userParam("user_id", userID); e != nil {
			writeError(w, e)
			return
		}
		q, e := s.inboxQuery(r)
		if e != nil {
			writeError(w, e)
			return
		}
		page, err := s.inbox.List(r.Context(), userID, q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resp := inboxResponse{UserID: userID, Notifications: page.Entries, Total: page.Total, Unread: page.Unread}
		if resp.Notifications == nil {
			resp.Notifications = []inbox.Entry{}
		}
		if page.Next != 0 {
			next := strconv.FormatUint(page.Next, 10)
			resp.NextCursor = &next
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

func (s *Server) inboxQuery(r *http.Request) (inbox.Query, *apiError) {
	v := r.URL.Query()
	q := inbox.Query{Limit: defaultPageSize}
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > s.opts.MaxPageSize {
			return q, invalid("limit", "limit must be a whole number from 1 to "+strconv.Itoa(s.opts.MaxPageSize))
		}
		q.Limit = n
	}
	q.Limit = min(q.Limit, s.opts.MaxPageSize)
	if raw := v.Get("cursor"); raw != "" {
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil || n == 0 {
			return q, invalid("cursor", "cursor must be a next_cursor value from an earlier page")
		}
		q.Before = n
	}
	switch v.Get("unread") {
	case "", "false", "0":
	case "true", "1":
		q.UnreadOnly = true
	default:
		return q, invalid("unread", "unread must be true or false")
	}
	return q, nil
}

// inboxTarget reads and checks the user and notification ids of a path.
func inboxTarget(r *http.Request) (userID, id string, e *apiError) {
	userID, id = r.PathValue("user_id"), r.PathValue("notification_id")
	if e := userParam("user_id", userID); e != nil {
		return "", "", e
	}
	if id != "" && !idPattern.MatchString(id) {
		return "", "", invalid("notification_id", "notification_id is not a valid id")
	}
	return userID, id, nil
}

// notifyUser pushes an inbox change to the user's live connections, so
// every open tab shows the same unread count. The change is already made;
// a failed push is logged, not reported.
func (s *Server) notifyUser(ctx context.Context, userID, event string, fields map[string]any) {
	unread, err := s.inbox.Unread(ctx, userID)
	if err == nil {
		fields["unread"] = unread
		fields["user_id"] = userID
		err = s.bus.NotifyUser(ctx, userID, broker.EventFrame(event, fields))
	}
	if err != nil {
		s.log.Error("push inbox change", slog.String("event", event), slog.String("user_id", userID), slog.Any("error", err))
	}
}

func (s *Server) handleMarkRead() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, id, e := inboxTarget(r)
		if e != nil {
			writeError(w, e)
			return
		}
		entry, changed, err := s.inbox.MarkRead(r.Context(), userID, id, broker.Now())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// Marking an entry already read changes nothing: no record, no push.
		if changed {
			s.audit.Record("read", slog.String("notification_id", id), slog.String("user_id", userID), slog.String("remote_addr", r.RemoteAddr))
			s.notifyUser(r.Context(), userID, "read", map[string]any{"id": id, "read_at": entry.ReadAt})
		}
		writeJSON(w, http.StatusOK, entry)
	})
}

func (s *Server) handleReadAll() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, _, e := inboxTarget(r)
		if e != nil {
			writeError(w, e)
			return
		}
		n, err := s.inbox.MarkAllRead(r.Context(), userID, broker.Now())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.audit.Record("read_all", slog.String("user_id", userID), slog.Int("updated", n), slog.String("remote_addr", r.RemoteAddr))
		if n > 0 {
			s.notifyUser(r.Context(), userID, "read_all", map[string]any{"updated": n})
		}
		writeJSON(w, http.StatusOK, map[string]int{"updated": n})
	})
}

func (s *Server) handleDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, id, e := inboxTarget(r)
		if e != nil {
			writeError(w, e)
			return
		}
		if err := s.inbox.Delete(r.Context(), userID, id); err != nil {
			s.fail(w, r, err)
			return
		}
		s.audit.Record("delete", slog.String("notification_id", id), slog.String("user_id", userID), slog.String("remote_addr", r.RemoteAddr))
		s.notifyUser(r.Context(), userID, "deleted", map[string]any{"id": id})
		w.WriteHeader(http.StatusNoContent)
	})
}

type channelsRequest struct {
	Channels []string `json:"channels"`
}

// handleConnectionChannels changes a live connection's channels from the
// backend: the way an SSE client, which cannot talk back, subscribes.
func (s *Server) handleConnectionChannels(subscribe bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connID := r.PathValue("connection_id")
		if !idPattern.MatchString(connID) {
			writeError(w, invalid("connection_id", "connection_id is not a valid id"))
			return
		}
		body, e := readBody(w, r, s.opts.MaxBodyBytes)
		if e != nil {
			writeError(w, e)
			return
		}
		var req channelsRequest
		if e := decodeJSON(body, &req, s.opts.MaxJSONDepth); e != nil {
			writeError(w, e)
			return
		}
		sub, err := s.changeChannels(r.Context(), connID, req.Channels, subscribe, "api", r.RemoteAddr)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, sub)
	})
}

// changeChannels is the one path for subscribe and unsubscribe, from a
// WebSocket frame or the REST API: validate, change, audit, and push the
// new set to the user's connections.
func (s *Server) changeChannels(ctx context.Context, connID string, channels []string, subscribe bool, via, remote string) (broker.Subscription, error) {
	channels, e := checkChannels("channels", channels, s.opts.MaxChannels)
	if e != nil {
		return broker.Subscription{}, e
	}
	if len(channels) == 0 {
		return broker.Subscription{}, invalid("channels", "give at least one channel")
	}
	action, event := "subscribe", "subscribed"
	change := s.bus.Subscribe
	if !subscribe {
		action, event, change = "unsubscribe", "unsubscribed", s.bus.Unsubscribe
	}
	sub, err := change(ctx, connID, channels)
	if err != nil {
		return broker.Subscription{}, err
	}
	s.audit.Record(action, slog.String("connection_id", connID), slog.String("user_id", sub.UserID),
		slog.Any("channels", channels), slog.String("via", via), slog.String("remote_addr", remote))
	f := broker.EventFrame(event, map[string]any{"connection_id": connID, "channels": channels, "subscriptions": nonNil(sub.Channels)})
	if err := s.bus.NotifyUser(ctx, sub.UserID, f); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("push subscription change", slog.String("connection_id", connID), slog.Any("error", err))
	}
	return sub, nil
}

func (s *Server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, code, body := "ok", http.StatusOK, map[string]any{}
		if s.check != nil {
			if err := s.check(r.Context()); err != nil {
				// Live streams stay open, but sends and schedules would be
				// refused: a load balancer should route new work elsewhere.
				status, code = "degraded", http.StatusServiceUnavailable
				body["error"] = "redis unavailable"
				s.log.Warn("health: degraded", slog.Any("error", err))
			}
		}
		body["status"] = status
		body["mode"] = s.opts.Mode
		body["connections"] = s.hub.Len()
		body["uptime_seconds"] = int(time.Since(s.started).Seconds())
		writeJSON(w, code, body)
	})
}
