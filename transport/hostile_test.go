package transport_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// Hostile input (docs/ARCHITECTURE.md#security-and-hostile-input): every
// bound on what a client may send, each row an attack. A row fails if the attack succeeds: the server accepts
// it, stores or delivers anything, answers without the API's JSON error,
// or stops answering.

// hostileRequest sends body (a string, []byte, or an io.Reader sent
// chunked, with no Content-Length) and decodes the JSON answer.
func hostileRequest(t *testing.T, ts *testServer, method, path string, body any, headers ...string) (int, map[string]any, http.Header) {
	t.Helper()
	r, ok := body.(io.Reader)
	if !ok {
		return ts.do(t, method, path, body, headers...)
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked: the size is known only by reading
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, raw)
	}
	return resp.StatusCode, m, resp.Header
}

// sendBody is a valid send body for u1 with extra fields (",..." or "")
// added at the end.
func sendBody(extra string) string { return `{"title":"x","user_id":"u1"` + extra + `}` }

// nested returns depth levels of arrays: [[[...]]].
func nested(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

// quotedList returns n JSON strings prefix0, prefix1, ... joined by commas.
func quotedList(prefix string, n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`"%s%d"`, prefix, i)
	}
	return strings.Join(items, ",")
}

// hostileChanges counts everything a request could have changed.
func hostileChanges(t *testing.T, ts *testServer) map[string]int {
	t.Helper()
	changes := map[string]int{}
	for _, action := range []string{"send", "delivery", "schedule", "subscribe", "unsubscribe", "read", "read_all", "delete", "cancel", "connect"} {
		changes[action] = len(ts.Logs.Records(action))
	}
	changes["u1 inbox"] = int(apiInbox(t, ts, "u1", "")["total"].(float64))
	status, list, _ := ts.do(t, http.MethodGet, "/api/v1/schedules", nil)
	if status != http.StatusOK {
		t.Fatalf("list schedules: status %d", status)
	}
	changes["schedules"] = int(list["total"].(float64))
	changes["connections"] = ts.Hub.Len()
	return changes
}

type hostileCase struct {
	name    string
	method  string // POST when empty
	path    string // send when empty
	body    any    // string, []byte or io.Reader (chunked)
	headers []string
	status  int // 400 when 0
	code    string
	field   string
}

func hostileRESTCases() []hostileCase {
	const send, schedule = "/api/v1/notifications/send", "/api/v1/notifications/schedule"
	future := `,"scheduled_at":"` + apiAt(time.Now().Add(time.Hour)) + `"`
	long := strings.Repeat("a", 129)
	longChannel := strings.Repeat("a", 165)
	return []hostileCase{
		// Size.
		{name: "body over MAX_BODY_BYTES", body: sendBody(`,"message":"` + strings.Repeat("m", 64<<10) + `"`), status: http.StatusRequestEntityTooLarge, code: "body_too_large"},
		{name: "chunked body over MAX_BODY_BYTES", body: strings.NewReader(sendBody(`,"message":"` + strings.Repeat("m", 64<<10) + `"`)), status: http.StatusRequestEntityTooLarge, code: "body_too_large"},
		{name: "endless chunked body", body: io.MultiReader(strings.NewReader(`{"title":"`), neverEnding('x')), status: http.StatusRequestEntityTooLarge, code: "body_too_large"},
		{name: "schedule body over MAX_BODY_BYTES", path: schedule, body: sendBody(future + `,"message":"` + strings.Repeat("m", 64<<10) + `"`), status: http.StatusRequestEntityTooLarge, code: "body_too_large"},

		// Invalid UTF-8 anywhere: encoding/json would store U+FFFD in the
		// strings and the raw bytes in data.
		{name: "invalid UTF-8 in title", body: []byte("{\"title\":\"a\xffb\",\"user_id\":\"u1\"}"), code: "invalid_json"},
		{name: "invalid UTF-8 in message", body: []byte(sendBody(",\"message\":\"\xc3\"")), code: "invalid_json"},
		{name: "invalid UTF-8 in type", body: []byte(sendBody(",\"type\":\"\xfe\"")), code: "invalid_json"},
		{name: "invalid UTF-8 in a data string", body: []byte(sendBody(",\"data\":{\"k\":\"\xff\"}")), code: "invalid_json"},
		{name: "invalid UTF-8 in a data key", body: []byte(sendBody(",\"data\":{\"\xff\":1}")), code: "invalid_json"},
		{name: "invalid UTF-8 in a nested data string", body: []byte(sendBody(",\"data\":{\"a\":[{\"b\":\"ok\xe2\x82\"}]}")), code: "invalid_json"},
		{name: "invalid UTF-8 in a top-level key", body: []byte(sendBody(",\"\xff\":1")), code: "invalid_json"},
		{name: "invalid UTF-8 in a channel", body: []byte(sendBody(",\"channels\":[\"n\xffs\"]")), code: "invalid_json"},
		{name: "invalid UTF-8 in user_ids", body: []byte("{\"title\":\"x\",\"user_ids\":[\"u\xff\"]}"), code: "invalid_json"},
		{name: "invalid UTF-8 between tokens", body: []byte("{\"title\":\"x\",\xff\"user_id\":\"u1\"}"), code: "invalid_json"},
		{name: "overlong UTF-8 for a slash", body: []byte(sendBody(",\"message\":\"..\xc0\xaf..\"")), code: "invalid_json"},
		{name: "UTF-8 encoded surrogate", body: []byte(sendBody(",\"message\":\"\xed\xa0\x80\"")), code: "invalid_json"},
		{name: "invalid UTF-8 in a schedule", path: schedule, body: []byte(sendBody(future + ",\"data\":{\"k\":\"\xff\"}")), code: "invalid_json"},
		{name: "invalid UTF-8 in a subscribe body", path: "/api/v1/connections/c1/subscribe", body: []byte("{\"channels\":[\"\xff\"]}"), code: "invalid_json"},

		// Escaped unpaired surrogates: valid UTF-8 text, invalid Unicode.
		{name: "escaped lone high surrogate in title", body: `{"title":"\ud800","user_id":"u1"}`, code: "invalid_json"},
		{name: "escaped lone low surrogate in data", body: sendBody(`,"data":{"k":"a\udc00b"}`), code: "invalid_json"},
		{name: "escaped high surrogate then a letter", body: sendBody(`,"message":"\uD83D\u0041"`), code: "invalid_json"},
		{name: "escaped high surrogate then high", body: sendBody(`,"message":"\ud83d\ud83d"`), code: "invalid_json"},
		{name: "escaped high surrogate at the end of a string", body: sendBody(`,"message":"x\ud83d"`), code: "invalid_json"},
		{name: "escaped surrogate in a data key", body: sendBody(`,"data":{"\udfff":1}`), code: "invalid_json"},

		// Nesting: bounded at 32 levels, the body's object being level 1.
		{name: "10,000 nested arrays in data", body: sendBody(`,"data":{"a":` + nested(10000) + `}`), code: "json_too_deep"},
		{name: "5,000 nested objects in data", body: sendBody(`,"data":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000)), code: "json_too_deep"},
		{name: "60,000 unclosed brackets", body: `{"data":` + strings.Repeat("[", 60000), code: "json_too_deep"},
		{name: "data one level too deep", body: sendBody(`,"data":{"a":` + nested(31) + `}`), code: "json_too_deep"},
		{name: "nested arrays as channels", body: sendBody(`,"channels":` + nested(100)), code: "json_too_deep"},
		{name: "nesting in a schedule", path: schedule, body: sendBody(future + `,"data":{"a":` + nested(1000) + `}`), code: "json_too_deep"},
		{name: "nesting in a subscribe body", path: "/api/v1/connections/c1/subscribe", body: `{"channels":` + nested(1000) + `}`, code: "json_too_deep"},

		// Counts.
		{name: "101 channels in a send", body: sendBody(`,"channels":[` + quotedList("c", 101) + `]`), code: "too_many_channels", field: "channels"},
		{name: "101 channels in a schedule", path: schedule, body: sendBody(future + `,"channels":[` + quotedList("c", 101) + `]`), code: "too_many_channels", field: "channels"},
		{name: "101 channels in a subscribe body", path: "/api/v1/connections/c1/subscribe", body: `{"channels":[` + quotedList("c", 101) + `]}`, code: "too_many_channels", field: "channels"},
		{name: "1,001 user_ids", body: `{"title":"x","user_ids":[` + quotedList("u", 1001) + `]}`, code: "validation_failed", field: "user_ids"},

		// Ids: 1-128 characters of A-Z a-z 0-9 _ . : @ = + -.
		{name: "user_id of 129 characters", body: `{"title":"x","user_id":"` + long + `"}`, code: "validation_failed", field: "user_id"},
		{name: "user_id climbing the path", body: `{"title":"x","user_id":"../admin"}`, code: "validation_failed", field: "user_id"},
		{name: "user_id with a NUL", body: `{"title":"x","user_id":"u1\u0000"}`, code: "validation_failed", field: "user_id"},
		{name: "user_id with CRLF", body: `{"title":"x","user_id":"u1\r\nlevel=ERROR"}`, code: "validation_failed", field: "user_id"},
		{name: "user_id look-alike", body: `{"title":"x","user_id":"us\u00e9r"}`, code: "validation_failed", field: "user_id"},
		{name: "user_id with a wildcard", body: `{"title":"x","user_id":"*"}`, code: "validation_failed", field: "user_id"},
		{name: "user_id integer beyond int64", body: `{"title":"x","user_id":99999999999999999999}`, code: "validation_failed", field: "user_id"},
		{name: "user_id in exponent form", body: `{"title":"x","user_id":1e3}`, code: "validation_failed", field: "user_id"},
		{name: "user_ids with a 129-character id", body: `{"title":"x","user_ids":["u1","` + long + `"]}`, code: "validation_failed", field: "user_ids"},

		// Channel names: 1-164 characters of A-Z a-z 0-9 _ - = @ , . ; :
		// (Laravel's and Pusher's, and ':').
		{name: "channel of 165 characters", body: sendBody(`,"channels":["` + longChannel + `"]`), code: "validation_failed", field: "channels"},
		{name: "channel with a slash", body: sendBody(`,"channels":["a/b"]`), code: "validation_failed", field: "channels"},
		{name: "channel with a space", body: sendBody(`,"channels":["a b"]`), code: "validation_failed", field: "channels"},
		{name: "channel with a newline", body: sendBody(`,"channels":["a\nb"]`), code: "validation_failed", field: "channels"},
		{name: "channel with a wildcard", body: sendBody(`,"channels":["news*"]`), code: "validation_failed", field: "channels"},
		{name: "empty channel name", body: sendBody(`,"channels":[""]`), code: "validation_failed", field: "channels"},
		{name: "non-ASCII channel", body: sendBody(`,"channels":["nov\u00e9"]`), code: "validation_failed", field: "channels"},

		// Text fields.
		{name: "type of 201 characters", body: sendBody(`,"type":"` + strings.Repeat("t", 201) + `"`), code: "validation_failed", field: "type"},
		{name: "title with a NUL", body: `{"title":"a\u0000b","user_id":"u1"}`, code: "validation_failed", field: "title"},
		{name: "title with an escape sequence", body: `{"title":"\u001b[31mred","user_id":"u1"}`, code: "validation_failed", field: "title"},

		// Paths and queries.
		{name: "connection id of 129 characters", path: "/api/v1/connections/" + long + "/subscribe", body: `{"channels":["a"]}`, code: "validation_failed", field: "connection_id"},
		{name: "inbox page over the maximum", method: http.MethodGet, path: "/api/v1/notifications/user/u1?limit=201", code: "validation_failed", field: "limit"},
		{name: "inbox page size overflowing int", method: http.MethodGet, path: "/api/v1/notifications/user/u1?limit=99999999999999999999999", code: "validation_failed", field: "limit"},
		{name: "inbox page size in exponent form", method: http.MethodGet, path: "/api/v1/notifications/user/u1?limit=1e2", code: "validation_failed", field: "limit"},
		{name: "inbox cursor overflowing uint64", method: http.MethodGet, path: "/api/v1/notifications/user/u1?cursor=18446744073709551616", code: "validation_failed", field: "cursor"},
		{name: "inbox of a 129-character user", method: http.MethodGet, path: "/api/v1/notifications/user/" + long, code: "validation_failed", field: "user_id"},
		{name: "inbox of a user with invalid UTF-8", method: http.MethodGet, path: "/api/v1/notifications/user/u%FF", code: "validation_failed", field: "user_id"},
		{name: "mark read of a 129-character id", method: http.MethodPut, path: "/api/v1/notifications/u1/" + long + "/read", code: "validation_failed", field: "notification_id"},
		{name: "delete of a non-ASCII id", method: http.MethodDelete, path: "/api/v1/notifications/u1/n%C3%A9", code: "validation_failed", field: "notification_id"},
		{name: "schedules of a 129-character user", method: http.MethodGet, path: "/api/v1/schedules?user_id=" + long, code: "validation_failed", field: "user_id"},
	}
}

// neverEnding is an endless body.
type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestHostileREST(t *testing.T) {
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u1", "channels", "c0,a,n"))
	sse.Ready(t)
	for _, tc := range hostileRESTCases() {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			before := hostileChanges(t, ts)
			method, path, status := tc.method, tc.path, tc.status
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/api/v1/notifications/send"
			}
			if status == 0 {
				status = http.StatusBadRequest
			}
			got, body, hdr := hostileRequest(t, ts, method, path, tc.body, tc.headers...)
			apiWantError(t, got, body, hdr, status, tc.code, tc.field)
			is.Equal(hostileChanges(t, ts), before) // a refused request changes nothing
		})
	}
	// Nothing reached the live connection either: the marker comes first.
	marker := ts.send(t, map[string]any{"title": "marker", "user_id": "u1"})
	sse.NextNotification(t, marker)
}

// TestHostileRESTWithinBounds: what sits just inside each bound is
// accepted and stored as sent, so the bounds refuse attacks, not users.
func TestHostileRESTWithinBounds(t *testing.T) {
	ts := newTestServer(t)
	long := strings.Repeat("a", 128)
	for _, tc := range []struct {
		name string
		body string
		// data is the data the stored notification carries, compacted; ""
		// means the body's data is not checked.
		data string
	}{
		{name: "user_id of 128 characters", body: `{"title":"x","user_id":"` + long + `"}`},
		{name: "channel of 164 characters", body: sendBody(`,"channels":["` + strings.Repeat("c", 164) + `"]`)},
		{name: "channel with every character Laravel allows", body: sendBody(`,"channels":["private-a,b;c=d@e.f_g-h:1"]`)},
		{name: "100 channels", body: sendBody(`,"channels":[` + quotedList("c", 100) + `]`)},
		{name: "1,000 user_ids", body: `{"title":"x","user_ids":[` + quotedList("u", 999) + `,"u1"]}`},
		{name: "data at the maximum depth", body: sendBody(`,"data":{"a":` + nested(30) + `}`), data: `{"a":` + nested(30) + `}`},
		{name: "brackets inside strings do not nest", body: sendBody(`,"data":{"s":"` + strings.Repeat("[{", 500) + `"}`), data: `{"s":"` + strings.Repeat("[{", 500) + `"}`},
		{name: "escaped quote before brackets", body: sendBody(`,"data":{"s":"\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`), data: `{"s":"\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`},
		{name: "escaped surrogate pair", body: sendBody(`,"message":"\ud83d\ude00","data":{"e":"\uD83D\uDE00"}`), data: `{"e":"\uD83D\uDE00"}`},
		{name: "escaped backslash then u", body: sendBody(`,"data":{"s":"\\ud800"}`), data: `{"s":"\\ud800"}`},
		{name: "raw emoji and accents", body: sendBody(`,"message":"Tarea lista ✅ — revisión","data":{"é":"😀"}`), data: `{"é":"😀"}`},
		{name: "body of exactly MAX_BODY_BYTES", body: sendBody(`,"message":"` + strings.Repeat("m", 64<<10-len(sendBody(`,"message":""`))) + `"`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			status, resp, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/send", tc.body)
			is.Equal(status, http.StatusCreated) // within bounds
			if tc.data == "" {
				return
			}
			entries := apiEntries(t, apiInbox(t, ts, "u1", "limit=1"))
			is.Equal(entries[0]["id"], resp["id"])
			var want any
			is.NoErr(json.Unmarshal([]byte(tc.data), &want))
			is.Equal(entries[0]["data"], want) // stored as sent
		})
	}
}

// TestHostileBoundsAreConfigurable: each size or count bound follows its
// option, refusing one past it and accepting it exactly.
func TestHostileBoundsAreConfigurable(t *testing.T) {
	ts := newTestServer(t, func(o *testConfig) {
		o.MaxBodyBytes = 1024
		o.MaxChannels = 3
		o.MaxPageSize = 10
		o.MaxJSONDepth = 4
	})
	padded := func(size int) string {
		return sendBody(`,"message":"` + strings.Repeat("m", size-len(sendBody(`,"message":""`))) + `"`)
	}
	for _, tc := range []struct {
		name         string
		method, path string
		within, over string // bodies, or what is appended to path
		status       int
		code, field  string
	}{
		{"MaxBodyBytes", http.MethodPost, "/api/v1/notifications/send", padded(1024), padded(1025), http.StatusRequestEntityTooLarge, "body_too_large", ""},
		{"MaxChannels in a send", http.MethodPost, "/api/v1/notifications/send", sendBody(`,"channels":["a","b","c"]`), sendBody(`,"channels":["a","b","c","d"]`), http.StatusBadRequest, "too_many_channels", "channels"},
		{"MaxChannels in the SSE URL", http.MethodGet, "/sse?user_id=u1&channels=", "a,b,c", "a,b,c,d", http.StatusBadRequest, "too_many_channels", "channels"},
		{"MaxChannels in the WebSocket URL", http.MethodGet, "/ws?user_id=u1&channels=", "a,b,c", "a,b,c,d", http.StatusBadRequest, "too_many_channels", "channels"},
		{"MaxPageSize", http.MethodGet, "/api/v1/notifications/user/u1?limit=", "10", "11", http.StatusBadRequest, "validation_failed", "limit"},
		{"MaxJSONDepth", http.MethodPost, "/api/v1/notifications/send", sendBody(`,"data":{"a":[[]]}`), sendBody(`,"data":{"a":[[[]]]}`), http.StatusBadRequest, "json_too_deep", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			switch {
			case strings.HasPrefix(tc.path, "/sse?"):
				c := ts.dialSSE(t, strings.TrimPrefix(tc.path, "/sse?")+tc.within)
				is.Equal(c.Ready(t)["channels"], []any{"a", "b", "c"}) // within the bound
				c.Close()
			case strings.HasPrefix(tc.path, "/ws?"):
				c := ts.dialWS(t, strings.TrimPrefix(tc.path, "/ws?")+tc.within)
				is.Equal(c.Ready(t)["channels"], []any{"a", "b", "c"}) // within the bound
				c.Close()
			case tc.method == http.MethodGet:
				status, _, _ := ts.do(t, tc.method, tc.path+tc.within, nil)
				is.Equal(status, http.StatusOK) // within the bound
			default:
				status, _, _ := ts.do(t, tc.method, tc.path, tc.within)
				is.Equal(status, http.StatusCreated) // within the bound
			}
			var body any
			path := tc.path
			if tc.method == http.MethodGet {
				path += tc.over
			} else {
				body = tc.over
			}
			status, resp, hdr := ts.do(t, tc.method, path, body)
			apiWantError(t, status, resp, hdr, tc.status, tc.code, tc.field)
		})
	}
}

// TestHostileStreamURLs: both transports refuse a bad URL before any
// stream starts, with the API's JSON error.
func TestHostileStreamURLs(t *testing.T) {
	ts := newTestServer(t)
	long := strings.Repeat("a", 129)
	channels := make([]string, 101)
	for i := range channels {
		channels[i] = fmt.Sprintf("c%d", i)
	}
	for _, tc := range []struct {
		name        string
		rawQuery    string
		code, field string
	}{
		{"no user", "channels=a", "validation_failed", "user_id"},
		{"user of 129 characters", "user_id=" + long, "validation_failed", "user_id"},
		{"user with a slash", "user_id=a%2Fb", "validation_failed", "user_id"},
		{"user with CRLF", "user_id=u1%0D%0Alevel%3DERROR", "validation_failed", "user_id"},
		{"user with invalid UTF-8", "user_id=u%FF", "validation_failed", "user_id"},
		{"user with a NUL", "user_id=u%00", "validation_failed", "user_id"},
		{"101 channels", "user_id=u1&channels=" + strings.Join(channels, ","), "too_many_channels", "channels"},
		{"10,000 commas", "user_id=u1&channels=" + strings.Repeat(",", 10000), "too_many_channels", "channels"},
		{"channel of 165 characters", "user_id=u1&channels=" + strings.Repeat("c", 165), "validation_failed", "channels"},
		{"channel of 165 characters, whole", "user_id=u1&channel=" + strings.Repeat("c", 165), "validation_failed", "channels"},
		{"empty channel between commas", "user_id=u1&channels=a,,b", "validation_failed", "channels"},
		{"channel with invalid UTF-8", "user_id=u1&channels=n%FFs", "validation_failed", "channels"},
		{"channel with a space", "user_id=u1&channels=a%20b", "validation_failed", "channels"},
	} {
		for _, path := range []string{"/sse", "/ws"} {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				is := is.New(t)
				status, body, hdr := ts.do(t, http.MethodGet, path+"?"+tc.rawQuery, nil)
				apiWantError(t, status, body, hdr, http.StatusBadRequest, tc.code, tc.field)
				is.Equal(ts.Hub.Len(), 0)
				is.Equal(len(ts.Logs.Records("connect")), 0)
			})
		}
	}
}

// TestHostileWSFrames: a bad action frame gets an error frame, changes
// nothing, and leaves the connection usable.
func TestHostileWSFrames(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(o *testConfig) { o.MaxChannels = 5 })
	// The connection holds as many channels as it may: any new one is over.
	ws := ts.dialWS(t, query("user_id", "alice", "channels", "a,b,c,d,e"))
	connID := ws.Ready(t)["connection_id"].(string)
	send := func(typ websocket.MessageType, b []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		is.NoErr(ws.Conn.Write(ctx, typ, b))
	}
	subscribe := func(channels string) []byte {
		return []byte(`{"action":"subscribe","channels":[` + channels + `]}`)
	}
	text := websocket.MessageText
	for _, tc := range []struct {
		name string
		typ  websocket.MessageType
		body []byte
		code string
	}{
		{"invalid UTF-8 in the action", text, []byte("{\"action\":\"pi\xffng\"}"), "invalid_json"},
		{"invalid UTF-8 in a channel", text, subscribe("\"n\xffs\""), "invalid_json"},
		{"invalid UTF-8 in a key", text, []byte("{\"action\":\"ping\",\"\xff\":1}"), "invalid_json"},
		{"invalid UTF-8 outside strings", text, []byte("{\"action\":\"ping\"}\xff"), "invalid_json"},
		{"escaped lone surrogate in a channel", text, subscribe(`"\ud800"`), "invalid_json"},
		{"8,000 unclosed brackets", text, []byte(`{"action":"subscribe","channels":` + strings.Repeat("[", 8000)), "json_too_deep"},
		{"5,000 nested arrays", text, subscribe(nested(5000)), "json_too_deep"},
		{"33 levels", text, []byte(`{"action":"ping","x":` + nested(32) + `}`), "json_too_deep"},
		{"6 channels in one frame", text, subscribe(`"f","g","h","i","j","k"`), "too_many_channels"},
		{"a sixth channel on the connection", text, subscribe(`"f"`), "too_many_channels"},
		{"channel of 165 characters", text, subscribe(`"` + strings.Repeat("c", 165) + `"`), "validation_failed"},
		{"non-ASCII channel", text, subscribe(`"nov\u00e9"`), "validation_failed"},
		{"empty channel name", text, subscribe(`""`), "validation_failed"},
		{"no channels", text, subscribe(``), "validation_failed"},
		{"channels null", text, []byte(`{"action":"subscribe","channels":null}`), "validation_failed"},
		{"channels not a list", text, []byte(`{"action":"subscribe","channels":"a,b"}`), "validation_failed"},
		{"action not a string", text, []byte(`{"action":["ping"]}`), "validation_failed"},
		{"unknown action", text, []byte(`{"action":"subscribe_all"}`), "unknown_action"},
		{"action with different case", text, []byte(`{"action":"PING"}`), "unknown_action"},
		{"unknown field", text, []byte(`{"action":"subscribe","channels":["f"],"user_id":"bob"}`), "unknown_field"},
		{"two objects", text, []byte(`{"action":"ping"}{"action":"ping"}`), "invalid_json"},
		{"blank frame", text, []byte(" \t\n"), "invalid_json"},
		{"empty frame", text, nil, "invalid_json"},
		{"binary frame", websocket.MessageBinary, []byte(`{"action":"ping"}`), "invalid_frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send(tc.typ, tc.body)
			m := ws.Next(t)
			if m["event"] != "error" || m["code"] != tc.code {
				t.Fatalf("got %v, want an error frame with code %s", m, tc.code)
			}
			if msg, _ := m["message"].(string); msg == "" {
				t.Fatalf("error frame without a message: %v", m)
			}
			// The connection is still usable.
			send(text, []byte(`{"action":"ping"}`))
			if m := ws.Next(t); m["event"] != "pong" {
				t.Fatalf("after the bad frame, ping got %v", m)
			}
		})
	}
	// None of it changed the subscriptions or was audited.
	is.Equal(len(ts.Logs.Records("subscribe")), 0)
	status, resp, _ := ts.do(t, http.MethodPost, "/api/v1/connections/"+connID+"/unsubscribe", `{"channels":["zzz"]}`)
	is.Equal(status, http.StatusOK)
	is.Equal(resp["channels"], []any{"a", "b", "c", "d", "e"})
}

// TestHostileWSFrameTooLarge: a message over MaxFrameBytes, however it is
// framed, closes the connection with 1009 before the server holds it all;
// one of exactly MaxFrameBytes is read.
func TestHostileWSFrameTooLarge(t *testing.T) {
	const limit = 1024
	ts := newTestServer(t, func(o *testConfig) { o.MaxFrameBytes = limit })
	ping := `{"action":"ping"}`
	write := func(t *testing.T, ws *wsClient, typ websocket.MessageType, fragments ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		w, err := ws.Conn.Writer(ctx, typ)
		if err != nil {
			return err
		}
		for _, f := range fragments {
			if _, err := io.WriteString(w, f); err != nil {
				return err
			}
		}
		return w.Close()
	}
	for _, tc := range []struct {
		name      string
		typ       websocket.MessageType
		fragments []string
	}{
		{"text one byte over", websocket.MessageText, []string{ping + strings.Repeat(" ", limit+1-len(ping))}},
		{"binary one byte over", websocket.MessageBinary, []string{strings.Repeat("b", limit+1)}},
		{"fragments adding up to over", websocket.MessageText, []string{strings.Repeat(" ", 600), ping + strings.Repeat(" ", 600)}},
		{"a megabyte", websocket.MessageText, []string{strings.Repeat("[", 1<<20)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ws := ts.dialWS(t, query("user_id", "alice"))
			ws.Ready(t)
			_ = write(t, ws, tc.typ, tc.fragments...) // the server may close mid-write
			is.Equal(ws.Closed(t), websocket.StatusMessageTooBig)
			streamtest.Eventually(t, "the connection to leave the hub", func() bool { return ts.Hub.Len() == 0 })
		})
	}
	streamtest.Eventually(t, "the disconnect records", func() bool {
		return len(slices.DeleteFunc(ts.disconnects(), func(r string) bool { return r != "frame_too_large" })) == 4
	})

	t.Run("exactly the limit", func(t *testing.T) {
		is := is.New(t)
		ws := ts.dialWS(t, query("user_id", "alice"))
		ws.Ready(t)
		is.NoErr(write(t, ws, websocket.MessageText, ping+strings.Repeat(" ", limit-len(ping))))
		ws.NextEvent(t, "pong")
	})
}
