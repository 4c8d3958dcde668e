package transport

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"notification-service/broker"
	"notification-service/inbox"
)

// The inbox resource: a user's notifications, newest first, with their
// read state (GET /api/v1/notifications/user/{user_id}), and the changes a
// browser makes to it (read, read-all, delete), each pushed to the user's
// live connections so every open tab agrees.

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
	var q inbox.Query
	var e *apiError
	if q.Limit, e = pageSize(v, s.opts.MaxPageSize); e != nil {
		return q, e
	}
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
		s.logger.Error("push inbox change", slog.String("event", event), slog.String("user_id", userID), slog.Any("error", err))
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
			if entry.ReadAt != nil {
				s.monitoring.Reads.Read(entry.Type, entry.Timestamp, *entry.ReadAt)
			}
			s.audit.Record("read", slog.String("notification_id", id), slog.String("user_id", userID), slog.String("type", entry.Type),
				slog.Any("channels", entry.Channels), slog.String("remote_addr", r.RemoteAddr))
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
