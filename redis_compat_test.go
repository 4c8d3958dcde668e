package main

import (
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
)

// TestRedisCommandsValidOnOldestRedis runs the whole service, two instances
// on one Redis, through what it asks of Redis: start-up (the version, the
// eviction policy, expiry events), sends with and without an
// Idempotency-Key (a claim, its result, the result replayed, the key reused
// for another request), broadcasts, a stream resuming from its cursor on the
// other instance, inbox reads and marks, schedules (listed, read, cancelled,
// fired), a subscribe routed to the instance holding the connection, health,
// metrics, and shutdown. Meanwhile the test's Redis records every command it
// runs (redistest's ValidOn) and fails on any command or option newer than
// the oldest Redis the service supports (redisconn.MinVersion). The broker,
// inbox and schedule packages run their own Redis suites the same way; the
// idempotency store's scripts, whose every branch this run need not take,
// are also checked from their source.
func TestRedisCommandsValidOnOldestRedis(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	nodes := startCluster(t, srv, 2)

	// Sends, live and replayed.
	sse := nodes[1].openSSE(t, query("user_id", "ana", "channels", "news"))
	sse.Ready(t)
	body := map[string]any{"type": "t", "title": "once", "message": "m", "user_id": "ana"}
	first := nodes[0].doWithHeaders(t, http.MethodPost, "/api/v1/notifications/send", body, "Idempotency-Key", "compat-1")
	is.Equal(first.status, http.StatusCreated)
	again := nodes[1].doWithHeaders(t, http.MethodPost, "/api/v1/notifications/send", body, "Idempotency-Key", "compat-1")
	is.Equal(again.body["id"], first.body["id"]) // the first answer, replayed
	other := nodes[1].doWithHeaders(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"type": "t", "title": "other", "message": "m", "user_id": "ana"}, "Idempotency-Key", "compat-1")
	is.Equal(other.status, http.StatusConflict) // the key reused for another request
	news := send(t, nodes[0], map[string]any{"type": "t", "title": "news", "message": "m", "channels": []string{"news"}})
	is.Equal(sse.Next(t)["id"], first.body["id"])
	seen := sse.Next(t)
	is.Equal(seen["id"], news["id"])
	sse.Close()
	missed := send(t, nodes[1], map[string]any{"type": "t", "title": "missed", "message": "m", "user_id": "ana"})
	back := streamtest.DialSSE(t, nodes[0].client, nodes[0].url+"/sse?"+query("user_id", "ana", "channels", "news"), "Last-Event-ID", seen.Cursor())
	back.Ready(t)
	is.Equal(back.Next(t)["id"], missed["id"])

	// The inbox.
	status, box := nodes[0].do(t, http.MethodGet, "/api/v1/notifications/user/ana", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(box["total"], float64(2))
	status, _ = nodes[1].do(t, http.MethodPut, "/api/v1/notifications/ana/"+missed["id"].(string)+"/read", nil)
	is.Equal(status, http.StatusOK)
	status, _ = nodes[0].do(t, http.MethodPut, "/api/v1/notifications/ana/read-all", nil)
	is.Equal(status, http.StatusOK)
	status, _ = nodes[1].do(t, http.MethodDelete, "/api/v1/notifications/ana/"+missed["id"].(string), nil)
	is.True(status < 300)

	// Schedules: one listed, read and cancelled, one fired at once.
	later := nodes[0].mustSchedule(t, map[string]any{"type": "t", "title": "later", "message": "m", "user_id": "ana",
		"scheduled_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)})
	id := later["id"].(string)
	status, _ = nodes[1].do(t, http.MethodGet, "/api/v1/schedules", nil)
	is.Equal(status, http.StatusOK)
	status, _ = nodes[1].do(t, http.MethodGet, "/api/v1/schedules/"+id, nil)
	is.Equal(status, http.StatusOK)
	status, _ = nodes[0].do(t, http.MethodDelete, "/api/v1/schedules/"+id, nil)
	is.True(status < 300)
	due := nodes[1].mustSchedule(t, map[string]any{"type": "t", "title": "due", "message": "m", "channels": []string{"news"},
		"scheduled_at": time.Now().UTC().Format(time.RFC3339Nano)})
	// Past ana's read and deleted events.
	is.Equal(back.SkipTo(t, "notification")["id"], due["id"]) // fired and delivered

	// A subscribe routed to the instance that holds the connection.
	ws := nodes[1].openWS(t, query("user_id", "carl"))
	connID := ws.NextEvent(t, "ready")["connection_id"].(string)
	status, _ = nodes[0].do(t, http.MethodPost, "/api/v1/connections/"+connID+"/subscribe", map[string]any{"channels": []string{"deals"}})
	is.Equal(status, http.StatusOK)

	for _, node := range nodes {
		status, _, err := node.try(http.MethodGet, "/health", nil)
		is.NoErr(err)
		is.Equal(status, http.StatusOK)
	}
	status, _, err := nodes[0].try(http.MethodGet, "/metrics", nil)
	is.NoErr(err)
	is.Equal(status, http.StatusOK)
	// The instances stop (unblocking their feed readers) in the test's
	// clean-up, before the server's records are checked.
}

// TestIdempotencyLuaValidOnOldestRedis checks the idempotency store's
// scripts, which live in Go strings in idempotency/redis.go, from their
// source.
func TestIdempotencyLuaValidOnOldestRedis(t *testing.T) {
	src, err := os.ReadFile("idempotency/redis.go")
	if err != nil {
		t.Fatal(err)
	}
	scripts := make(map[string]string)
	for i, m := range regexp.MustCompile("(?s)redis\\.NewScript\\(`(.*?)`\\)").FindAllStringSubmatch(string(src), -1) {
		scripts["idempotency/redis.go script "+string(rune('1'+i))] = m[1]
	}
	if len(scripts) < 3 {
		t.Fatalf("found %d scripts in idempotency/redis.go, want its begin, finish and abort", len(scripts))
	}
	redistest.CheckScripts(t, redistest.Start(t, redistest.Options{}), redisconn.MinVersion, scripts)
}
