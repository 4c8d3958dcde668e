package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"notification-service/broker"
	"notification-service/internal/jsontext"
)

var (
	// Ids and channel names travel in URLs, Redis keys and log lines: a
	// small alphabet keeps them safe in all three.
	idPattern = regexp.MustCompile(`^[A-Za-z0-9_.:@=+-]{1,128}$`)
	// Channel names are every name Laravel and Pusher allow
	// ([-a-zA-Z0-9_=@,.;], up to 164 characters: private-App.Models.User.1,
	// presence-room.1, private-encrypted-…), and ':' as before. A name
	// holding ',' cannot go in the comma-separated channels parameter of a
	// stream's URL; the channel parameter takes one name whole.
	channelPattern = regexp.MustCompile(`^[-A-Za-z0-9_=@,.;:]{1,164}$`)
)

// channelRule says what channelPattern allows, for error messages.
const channelRule = "1-164 characters of A-Z a-z 0-9 _ - = @ , . ; :"

const (
	maxBatchUsers = 1000
	// bodyReadTimeout bounds reading one REST body.
	bodyReadTimeout = 30 * time.Second
)

// flexID accepts a user id as a JSON string or integer: Laravel models
// usually have integer keys, and "user_id": 42 should not be an error.
type flexID string

func (f *flexID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexID(s)
		return nil
	}
	if _, err := strconv.ParseInt(string(b), 10, 64); err != nil {
		return &json.UnmarshalTypeError{Value: "non-integer " + string(b), Type: reflect.TypeFor[string]()}
	}
	*f = flexID(b)
	return nil
}

// notificationRequest is the body of send and schedule.
type notificationRequest struct {
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Message     string          `json:"message"`
	UserID      *flexID         `json:"user_id"`
	UserIDs     []flexID        `json:"user_ids"`
	Channels    []string        `json:"channels"`
	Data        json.RawMessage `json:"data"`
	ScheduledAt *string         `json:"scheduled_at,omitempty"`
}

// readBody reads a bounded JSON body. It checks the media type (415), the
// size (413), and returns the raw bytes so an idempotency fingerprint and
// the decoder see the same content.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "send the body as application/json"}
		}
	}
	// A client trickling its body must not hold a handler (and shutdown)
	// for long; the server resets the deadline for the next request.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("the body exceeds %d bytes", limit)}
		}
		return nil, badRequest("bad_body", "", "could not read the request body")
	}
	return body, nil
}

// decodeJSON decodes exactly one JSON object into v, refusing unknown
// fields (a misspelt "user_Id" must not silently become a broadcast) and
// trailing data, and turns decoder errors into messages naming the field.
// Before decoding, checkJSONText refuses what encoding/json would let
// through (invalid Unicode) or what would cost to hold (deep nesting).
func decodeJSON(body []byte, v any, maxDepth int) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("invalid_json", "", "the request body is empty; send a JSON object")
	}
	if e := checkJSONText(body, maxDepth); e != nil {
		return e
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid_json", "", "unexpected data after the JSON object")
	}
	return nil
}

// checkJSONText refuses, before decoding, what encoding/json handles badly
// for this service (jsontext.Check): invalid UTF-8 and escapes of unpaired
// surrogates, which decode silently as U+FFFD while "data" (a
// json.RawMessage) keeps them raw for browsers, and nesting deeper than
// maxDepth (the body's own object is level 1), since every level of "data"
// is stored, replayed and re-parsed by each client.
func checkJSONText(body []byte, maxDepth int) *apiError {
	err := jsontext.Check(body, maxDepth)
	var surrogate *jsontext.SurrogateError
	var deep *jsontext.DepthError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &surrogate):
		return badRequest("invalid_json", "", fmt.Sprintf("unpaired UTF-16 surrogate escape at byte %d; send valid Unicode", surrogate.Offset))
	case errors.As(err, &deep):
		return badRequest("json_too_deep", "", fmt.Sprintf("the JSON nests deeper than %d levels (objects and arrays)", deep.Max))
	}
	return badRequest("invalid_json", "", "the request body is not valid UTF-8")
}

func decodeError(err error) *apiError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return badRequest("invalid_json", "", fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("invalid_json", "", "the body must be a JSON object")
		}
		return invalid(typ.Field, fmt.Sprintf("%s has the wrong type (got %s)", typ.Field, typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid_json", "", "the JSON body ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest("unknown_field", field, fmt.Sprintf("unknown field %q", field))
	default:
		return badRequest("invalid_json", "", "malformed JSON: "+err.Error())
	}
}

// toNotifications validates a send or schedule request and builds what will
// be published: one notification per addressed user, or one broadcast. All
// share one id.
func (req *notificationRequest) toNotifications(id string, maxChannels int) ([]broker.Notification, *apiError) {
	typ := req.Type
	if typ == "" {
		typ = "info"
	}
	if e := checkText("type", typ, broker.MaxTypeLen); e != nil {
		return nil, e
	}
	if req.Title == "" && req.Message == "" {
		return nil, invalid("title", "give a title, a message or both")
	}
	if e := checkText("title", req.Title, broker.MaxTitleLen); e != nil {
		return nil, e
	}
	if !utf8.ValidString(req.Message) {
		return nil, invalid("message", "message is not valid UTF-8")
	}
	users, e := req.users()
	if e != nil {
		return nil, e
	}
	channels, e := checkChannels("channels", req.Channels, maxChannels)
	if e != nil {
		return nil, e
	}
	if len(users) == 0 && len(channels) == 0 {
		return nil, invalid("user_id", "address the notification: give user_id, user_ids or channels")
	}
	data, e := checkData(req.Data)
	if e != nil {
		return nil, e
	}
	base := broker.Notification{ID: id, Type: typ, Title: req.Title, Message: req.Message, Channels: channels, Data: data}
	if len(users) == 0 {
		return []broker.Notification{base}, nil
	}
	ns := make([]broker.Notification, len(users))
	for i, u := range users {
		ns[i] = base
		ns[i].UserID = u
	}
	return ns, nil
}

func (req *notificationRequest) users() ([]string, *apiError) {
	if req.UserID != nil && req.UserIDs != nil {
		return nil, invalid("user_ids", "give user_id or user_ids, not both")
	}
	if req.UserID != nil {
		if !idPattern.MatchString(string(*req.UserID)) {
			return nil, invalid("user_id", "user_id must be 1-128 characters of A-Z a-z 0-9 _ . : @ = + -")
		}
		return []string{string(*req.UserID)}, nil
	}
	if req.UserIDs == nil {
		return nil, nil
	}
	if len(req.UserIDs) == 0 || len(req.UserIDs) > maxBatchUsers {
		return nil, invalid("user_ids", fmt.Sprintf("user_ids must hold 1 to %d ids", maxBatchUsers))
	}
	seen := make(map[string]struct{}, len(req.UserIDs))
	users := make([]string, 0, len(req.UserIDs))
	for _, u := range req.UserIDs {
		if !idPattern.MatchString(string(u)) {
			return nil, invalid("user_ids", fmt.Sprintf("user id %q must be 1-128 characters of A-Z a-z 0-9 _ . : @ = + -", string(u)))
		}
		if _, dup := seen[string(u)]; !dup {
			seen[string(u)] = struct{}{}
			users = append(users, string(u))
		}
	}
	return users, nil
}

// checkChannels validates and de-duplicates channel names, keeping order.
func checkChannels(field string, channels []string, max int) ([]string, *apiError) {
	if max > 0 && len(channels) > max {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "too_many_channels", Field: field, Message: fmt.Sprintf("at most %d channels", max)}
	}
	seen := make(map[string]struct{}, len(channels))
	out := make([]string, 0, len(channels))
	for _, ch := range channels {
		if !channelPattern.MatchString(ch) {
			return nil, invalid(field, fmt.Sprintf("channel %q must be %s", ch, channelRule))
		}
		if _, dup := seen[ch]; !dup {
			seen[ch] = struct{}{}
			out = append(out, ch)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func checkText(field, s string, max int) *apiError {
	if !utf8.ValidString(s) {
		return invalid(field, field+" is not valid UTF-8")
	}
	if utf8.RuneCountInString(s) > max {
		return invalid(field, fmt.Sprintf("%s is longer than %d characters", field, max))
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return invalid(field, field+" contains control characters")
	}
	return nil
}

// checkData accepts a JSON object, null, or an empty array: PHP encodes an
// empty array as [], and the seed's Laravel client sends 'data' => [].
func checkData(raw json.RawMessage) (json.RawMessage, *apiError) {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0, bytes.Equal(trimmed, []byte("null")):
		return nil, nil
	case trimmed[0] == '{':
		var buf bytes.Buffer
		if err := json.Compact(&buf, trimmed); err != nil {
			return nil, invalid("data", "data is not valid JSON")
		}
		if buf.Len() == 2 {
			return nil, nil
		}
		return buf.Bytes(), nil
	case trimmed[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(trimmed, &list); err == nil && len(list) == 0 {
			return nil, nil
		}
	}
	return nil, invalid("data", "data must be a JSON object")
}

// parseScheduledAt reads an RFC 3339 time and bounds it: the past means
// now, more than a year ahead is refused.
func parseScheduledAt(s *string, now time.Time) (time.Time, *apiError) {
	if s == nil || *s == "" {
		return time.Time{}, invalid("scheduled_at", "scheduled_at is required (RFC 3339, e.g. 2024-01-29T17:00:00Z)")
	}
	at, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}, invalid("scheduled_at", "scheduled_at must be an RFC 3339 time such as 2024-01-29T17:00:00Z")
	}
	if at.After(now.AddDate(1, 0, 0)) {
		return time.Time{}, invalid("scheduled_at", "scheduled_at is more than a year ahead")
	}
	return at.UTC(), nil
}

// channelsParam reads a stream's channels from its URL: the
// comma-separated channels parameter, and each channel parameter whole (a
// name that holds a comma).
func channelsParam(r *http.Request, max int) ([]string, *apiError) {
	q := r.URL.Query()
	var names []string
	if raw := q.Get("channels"); raw != "" {
		names = strings.Split(raw, ",")
	}
	names = append(names, q["channel"]...)
	if len(names) == 0 {
		return nil, nil
	}
	return checkChannels("channels", names, max)
}

// defaultPageSize is a page of a listing (inbox, schedules) without a
// limit.
const defaultPageSize = 50

// pageSize reads a listing's limit: defaultPageSize (at most max) when
// there is none, else a number from 1 to max.
func pageSize(v url.Values, max int) (int, *apiError) {
	raw := v.Get("limit")
	if raw == "" {
		return min(defaultPageSize, max), nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > max {
		return 0, invalid("limit", "limit must be a whole number from 1 to "+strconv.Itoa(max))
	}
	return n, nil
}

func userParam(field, value string) *apiError {
	if value == "" {
		return invalid(field, field+" is required")
	}
	if !idPattern.MatchString(value) {
		return invalid(field, field+" must be 1-128 characters of A-Z a-z 0-9 _ . : @ = + -")
	}
	return nil
}
