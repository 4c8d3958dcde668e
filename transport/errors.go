package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"notification-service/broker"
	"notification-service/idempotency"
	"notification-service/inbox"
	"notification-service/schedule"
	"notification-service/store"
)

// apiError is the one error shape of the API (docs/ARCHITECTURE.md#errors):
// {"error":{"code":"validation_failed","message":"…","field":"title"}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter, in seconds, is sent as the Retry-After header (429).
	RetryAfter int `json:"-"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, field, message string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Field: field, Message: message}
}

func invalid(field, message string) *apiError {
	return badRequest("validation_failed", field, message)
}

// shuttingDownError refuses a stream that would start while the server closes
// its streams: the client reconnects, to this instance's successor or
// another one.
func shuttingDownError() *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "shutting_down", Message: "the server is shutting down; reconnect"}
}

// statusOf maps the sentinel errors of the domain packages to HTTP: the one
// place where that mapping lives.
func statusOf(err error) *apiError {
	var ae *apiError
	var inProgress *idempotency.InProgressError
	var limit *schedule.LimitError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, inbox.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "notification_not_found", Message: "no such notification in this user's inbox"}
	case errors.Is(err, schedule.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "schedule_not_found", Message: "no pending scheduled notification with this id (it may have fired or been cancelled)"}
	case errors.Is(err, broker.ErrUnknownConnection):
		return &apiError{Status: http.StatusNotFound, Code: "connection_not_found", Message: "no live connection with this id"}
	case errors.Is(err, broker.ErrNotOwner):
		return &apiError{Status: http.StatusForbidden, Code: "forbidden_connection", Message: "this connection belongs to another user"}
	case errors.Is(err, broker.ErrTooManyChannels):
		return &apiError{Status: http.StatusBadRequest, Code: "too_many_channels", Field: "channels", Message: "the connection would exceed its channel limit"}
	case errors.As(err, &inProgress):
		// Retryable: another attempt holds the key, for RetryAfter at most
		// (an attempt that died leaves a claim that lapses by then).
		return &apiError{Status: http.StatusConflict, Code: "idempotency_in_progress", RetryAfter: max(1, int(math.Ceil(inProgress.RetryAfter.Seconds()))),
			Message: "a request with this Idempotency-Key is in progress; retry after Retry-After seconds to get its answer"}
	case errors.Is(err, idempotency.ErrMismatch):
		return &apiError{Status: http.StatusConflict, Code: "idempotency_key_reused", Message: "this Idempotency-Key was used for a different request"}
	case errors.Is(err, schedule.ErrDuplicate):
		return &apiError{Status: http.StatusConflict, Code: "schedule_exists", Message: "a scheduled notification with this id exists or has fired"}
	case errors.Is(err, schedule.ErrUserLimit) && errors.As(err, &limit):
		// Not retryable soon: a slot frees only when one of the user's
		// schedules fires or is cancelled.
		return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_pending_schedules",
			Message: fmt.Sprintf("user %s already has %d pending scheduled notifications; nothing was scheduled (one frees when it fires or is cancelled)", limit.UserID, limit.Limit)}
	case errors.Is(err, schedule.ErrTotalLimit) && errors.As(err, &limit):
		return &apiError{Status: http.StatusTooManyRequests, Code: "scheduler_full",
			Message: fmt.Sprintf("the service already holds %d pending scheduled notifications; nothing was scheduled", limit.Limit)}
	case errors.Is(err, store.ErrUnavailable):
		// Refused, never accepted and dropped: the caller retries.
		return &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Message: "the shared store (Redis) is unreachable; nothing was done, retry later"}
	default:
		return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == http.StatusUnauthorized {
		// RFC 9110 asks a 401 to name the scheme it wants.
		w.Header().Set("WWW-Authenticate", `Bearer realm="notification-service"`)
	}
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

// fail answers err in the API's error shape, logging what the client is not
// told.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := statusOf(err)
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		s.refuse(w, r, e) // audited as denied
		return
	}
	switch {
	case e.Status == http.StatusTooManyRequests: // a schedule cap; the rates record their own
		s.denied(e, requestAttrs(r)...)
	case e.Status == http.StatusServiceUnavailable:
		// Expected while Redis is away, once per refused request: the bus
		// logs the outage itself; a line a second says it goes on.
		if n, ok := s.unavailable.tick(time.Now()); ok {
			s.logger.Warn("requests refused: store unavailable", slog.Int("refused", n), slog.Any("error", err))
		}
	case e.Status >= 500:
		s.logger.Error("request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	writeError(w, e)
}

// everySecond counts events and says, at most once a second, how many
// there were since it last said so.
type everySecond struct {
	mu    sync.Mutex
	last  time.Time
	count int
}

func (c *everySecond) tick(now time.Time) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count++
	if now.Sub(c.last) < time.Second {
		return 0, false
	}
	n := c.count
	c.last, c.count = now, 0
	return n, true
}
