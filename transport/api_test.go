package transport_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The REST API as the tests call it: requests that must succeed, the one
// error shape, and the JSON types read back. The tests live in one file per
// resource: notifications_test.go (send), schedules_test.go, inbox_test.go,
// connections_test.go, pusher_api_test.go; and per concern: errors_test.go
// (unknown routes, wrong methods), cors_test.go, audit_test.go,
// seed_test.go (the seed's own examples).

// apiPath joins path segments, escaping each.
func apiPath(segments ...string) string {
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return "/" + strings.Join(segments, "/")
}

// apiInbox lists a user's inbox and fails unless it answers 200.
func apiInbox(t *testing.T, ts *testServer, user, rawQuery string) map[string]any {
	t.Helper()
	path := "/api/v1/notifications/user/" + url.PathEscape(user)
	if rawQuery != "" {
		path += "?" + rawQuery
	}
	status, body, _ := ts.do(t, http.MethodGet, path, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %v", path, status, body)
	}
	return body
}

// apiEntries returns the notifications of an inbox listing.
func apiEntries(t *testing.T, body map[string]any) []map[string]any {
	t.Helper()
	list, ok := body["notifications"].([]any)
	if !ok {
		t.Fatalf("notifications is not an array: %#v", body["notifications"])
	}
	out := make([]map[string]any, len(list))
	for i, e := range list {
		out[i] = e.(map[string]any)
	}
	return out
}

// apiIDs returns the ids of an inbox listing, in order.
func apiIDs(t *testing.T, body map[string]any) []string {
	t.Helper()
	var ids []string
	for _, e := range apiEntries(t, body) {
		ids = append(ids, e["id"].(string))
	}
	return ids
}

// apiWantError checks the one error shape: the status, JSON content type,
// {"error":{"code","message"[,"field"]}}; field "" means no field.
func apiWantError(t *testing.T, status int, body map[string]any, hdr http.Header, wantStatus int, code, field string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %v", status, wantStatus, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %v", body)
	}
	if e["code"] != code {
		t.Fatalf("code %v, want %s: %v", e["code"], code, e)
	}
	if m, _ := e["message"].(string); m == "" {
		t.Fatalf("no message: %v", e)
	}
	if field == "" {
		if _, has := e["field"]; has {
			t.Fatalf("unexpected field %v: %v", e["field"], e)
		}
	} else if e["field"] != field {
		t.Fatalf("field %v, want %s: %v", e["field"], field, e)
	}
}

// apiSchedule posts a schedule and returns the answer, failing unless 201.
func apiSchedule(t *testing.T, ts *testServer, body any, headers ...string) map[string]any {
	t.Helper()
	status, resp, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/schedule", body, headers...)
	if status != http.StatusCreated {
		t.Fatalf("schedule: status %d: %v", status, resp)
	}
	return resp
}

// apiTime parses an RFC 3339 timestamp from a JSON field and checks it is
// UTC.
func apiTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("timestamp is not a string: %#v", v)
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("timestamp %q is not RFC 3339: %v", s, err)
	}
	if !strings.HasSuffix(s, "Z") {
		t.Fatalf("timestamp %q is not UTC", s)
	}
	return at
}

// apiStrings converts a JSON array of strings.
func apiStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// apiAt formats a time as the API takes it, at millisecond precision.
func apiAt(at time.Time) string {
	return at.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
}

// apiErrorCase is one refused request and the error it must get.
type apiErrorCase struct {
	name    string
	body    any // string or []byte, sent as is
	headers []string
	status  int
	code    string
	field   string
}
