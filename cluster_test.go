package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
)

// Several real instances (serve, as main runs it) sharing one real Redis:
// what a deployment behind a load balancer does.

var clusterPrefixes atomic.Int64

// startCluster starts n instances on srv under a prefix of their own.
func startCluster(t *testing.T, srv *redistest.Server, n int, overrides ...string) []*service {
	t.Helper()
	prefix := fmt.Sprintf("c%d:", clusterPrefixes.Add(1))
	nodes := make([]*service, n)
	for i := range nodes {
		nodes[i] = startService(t, append([]string{"REDIS_URL", srv.Addr(), "REDIS_PREFIX", prefix}, overrides...)...)
	}
	// Ready: each reads the feed and can route a subscribe to the others.
	for _, node := range nodes {
		streamtest.Eventually(t, "the instance ready", func() bool {
			status, _, err := node.try(http.MethodGet, "/readyz", nil)
			return err == nil && status == http.StatusOK
		})
	}
	return nodes
}

func TestClusterDeliversAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	nodes := startCluster(t, srv, 3)

	t.Run("a send on one instance reaches SSE and WebSocket clients on the others, once", func(t *testing.T) {
		is := is.New(t)
		sse := nodes[1].openSSE(t, query("user_id", "ana", "channels", "news"))
		sse.Ready(t)
		ws := nodes[2].openWS(t, query("user_id", "ben", "channels", "news"))
		is.Equal(ws.Ready(t)["user_id"], "ben")

		var ids []string
		for i := range 3 {
			out := send(t, nodes[i], map[string]any{"type": "t", "title": fmt.Sprint(i), "message": "m", "channels": []string{"news"}})
			ids = append(ids, out["id"].(string))
		}
		for _, id := range ids { // in order
			sse.NextNotification(t, id)
			ws.NextNotification(t, id)
		}
		// A user-addressed one goes to that user only.
		out := send(t, nodes[0], map[string]any{"type": "t", "title": "x", "message": "m", "user_id": "ana"})
		sse.NextNotification(t, out["id"].(string))
		marker := send(t, nodes[0], map[string]any{"type": "t", "title": "end", "message": "m", "channels": []string{"news"}})
		ws.NextNotification(t, marker["id"].(string)) // ben never saw ana's
	})

	t.Run("a server-side subscribe reaches the instance holding the connection", func(t *testing.T) {
		is := is.New(t)
		ws := nodes[2].openWS(t, query("user_id", "carl"))
		ready := ws.Ready(t)
		connID := ready["connection_id"].(string)

		status, sub := nodes[0].do(t, http.MethodPost, "/api/v1/connections/"+connID+"/subscribe", map[string]any{"channels": []string{"deals"}})
		is.Equal(status, http.StatusOK)
		is.Equal(sub["channels"], []any{"deals"})
		is.Equal(ws.NextEvent(t, "subscribed")["channels"], []any{"deals"}) // told on its own instance
		out := send(t, nodes[1], map[string]any{"type": "t", "title": "deal", "message": "m", "channels": []string{"deals"}})
		ws.NextNotification(t, out["id"].(string))

		status, _ = nodes[0].do(t, http.MethodPost, "/api/v1/connections/no-such-conn/subscribe", map[string]any{"channels": []string{"deals"}})
		is.Equal(status, http.StatusNotFound)
	})

	t.Run("a client dropped from one instance resumes on another with exactly what it missed", func(t *testing.T) {
		is := is.New(t)
		sse := nodes[0].openSSE(t, query("user_id", "dora", "channels", "alerts"))
		sse.Ready(t)
		first := send(t, nodes[0], map[string]any{"type": "t", "title": "seen", "message": "m", "user_id": "dora"})
		seen := sse.NextNotification(t, first["id"].(string))
		sse.Close()

		var missed []string
		for i := range 6 {
			body := map[string]any{"type": "t", "title": fmt.Sprint("missed ", i), "message": "m"}
			switch i % 3 {
			case 0:
				body["user_id"] = "dora"
			case 1:
				body["channels"] = []string{"alerts"}
			case 2:
				body["channels"] = []string{"elsewhere"}
			}
			out := send(t, nodes[i%3], body)
			if i%3 != 2 {
				missed = append(missed, out["id"].(string))
			}
		}
		back := streamtest.DialSSE(t, nodes[1].client, nodes[1].url+"/sse?"+query("user_id", "dora", "channels", "alerts"), "Last-Event-ID", seen.Cursor())
		back.Ready(t)
		is.Equal(streamtest.IDs(back.NextNotifications(t, len(missed))), missed)
		live := send(t, nodes[2], map[string]any{"type": "t", "title": "live", "message": "m", "user_id": "dora"})
		back.NextNotification(t, live["id"].(string)) // nothing replayed twice in between
	})

	t.Run("an idempotency key holds across instances", func(t *testing.T) {
		is := is.New(t)
		body := map[string]any{"type": "t", "title": "once", "message": "m", "user_id": "eve"}
		first := nodes[0].doWithHeaders(t, http.MethodPost, "/api/v1/notifications/send", body, "Idempotency-Key", "order-77")
		is.Equal(first.status, http.StatusCreated)
		again := nodes[1].doWithHeaders(t, http.MethodPost, "/api/v1/notifications/send", body, "Idempotency-Key", "order-77")
		is.Equal(again.status, http.StatusCreated)
		is.Equal(again.body["id"], first.body["id"])
		_, box := nodes[2].do(t, http.MethodGet, "/api/v1/notifications/user/eve", nil)
		is.Equal(box["total"], float64(1))
	})

	t.Run("inbox reads and marks go to the shared store from any instance", func(t *testing.T) {
		is := is.New(t)
		out := send(t, nodes[0], map[string]any{"type": "t", "title": "x", "message": "m", "user_id": "finn"})
		sse := nodes[2].openSSE(t, query("user_id", "finn"))
		sse.Ready(t)
		status, _ := nodes[1].do(t, http.MethodPut, "/api/v1/notifications/finn/"+out["id"].(string)+"/read", nil)
		is.Equal(status, http.StatusOK)
		sse.NextEvent(t, "read") // the read event crosses instances too
		_, box := nodes[2].do(t, http.MethodGet, "/api/v1/notifications/user/finn", nil)
		is.Equal(box["unread"], float64(0))
	})
}

// TestClusterKeepsToItsPrefix: every key the service writes carries
// REDIS_PREFIX, so apps and environments can share one Redis.
func TestClusterKeepsToItsPrefix(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	nodes := startCluster(t, srv, 2, "REDIS_PREFIX", "acme:staging:")
	sse := nodes[1].openSSE(t, query("user_id", "ivy", "channels", "news"))
	sse.Ready(t)
	out := send(t, nodes[0], map[string]any{"type": "t", "title": "x", "message": "m", "user_id": "ivy"})
	sse.NextNotification(t, out["id"].(string))
	send(t, nodes[0], map[string]any{"type": "t", "title": "x", "message": "m", "channels": []string{"news"}})
	nodes[1].doWithHeaders(t, http.MethodPost, "/api/v1/notifications/send", map[string]any{"type": "t", "title": "x", "message": "m", "user_id": "ivy"}, "Idempotency-Key", "k1")
	nodes[0].mustSchedule(t, map[string]any{"type": "t", "title": "x", "message": "m", "user_id": "ivy",
		"scheduled_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})

	keys, err := srv.Client().Keys(t.Context(), "*").Result()
	is.NoErr(err)
	is.True(len(keys) > 5) // inbox, history, feed, idempotency, schedule...
	for _, k := range keys {
		if !strings.HasPrefix(k, "acme:staging:") {
			t.Errorf("key %q is outside REDIS_PREFIX", k)
		}
	}
}

func TestClusterFiresEachScheduleOnce(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	// A queue as long as the items: this test is about firing once; a
	// watcher whose writer a loaded machine starves for a moment would
	// otherwise be closed as a slow consumer and miss some.
	nodes := startCluster(t, srv, 3, "CLIENT_QUEUE_SIZE", "2048")
	const items = 1000

	watchers := make([]chan string, len(nodes))
	for i, node := range nodes {
		sse := node.openSSE(t, query("user_id", fmt.Sprint("watcher-", i), "channels", "timed"))
		sse.Ready(t)
		ids := make(chan string, items*2)
		watchers[i] = ids
		go func() {
			for ev := range sse.Events {
				var n struct{ ID string }
				if ev.Event == "" && json.Unmarshal([]byte(ev.Data), &n) == nil {
					ids <- n.ID
				}
			}
		}()
	}

	at := time.Now().Add(1500 * time.Millisecond).UTC()
	scheduled := make(map[string]bool, items)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, items)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < items; i += 8 {
				status, body, err := nodes[i%3].tryJSON(http.MethodPost, "/api/v1/notifications/schedule", map[string]any{
					"type": "t", "title": fmt.Sprint(i), "message": "m", "channels": []string{"timed"},
					"scheduled_at": at.Add(time.Duration(i%100) * time.Millisecond).Format(time.RFC3339Nano),
				})
				if err != nil || status != http.StatusCreated {
					errs <- fmt.Errorf("schedule %d: %d %v", i, status, err)
					return
				}
				mu.Lock()
				scheduled[body["id"].(string)] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	is.Equal(len(scheduled), items)

	// Every watcher, whichever instance holds it, sees each item once.
	for i, ids := range watchers {
		seen := make(map[string]int, items)
		deadline := time.After(20 * time.Second)
		for len(seen) < items {
			select {
			case id := <-ids:
				seen[id]++
				if seen[id] > 1 {
					t.Fatalf("watcher %d got %s twice", i, id)
				}
				is.True(scheduled[id])
			case <-deadline:
				t.Fatalf("watcher %d got %d of %d", i, len(seen), items)
			}
		}
	}
	// And the fire audit says each fired once across the cluster.
	fired := map[string]int{}
	for _, node := range nodes {
		for _, rec := range records(node.logs.String(), auditRecord("fire", nil)) {
			fired[rec["schedule_id"].(string)]++
		}
	}
	is.Equal(len(fired), items)
	for id, n := range fired {
		if n != 1 {
			t.Fatalf("%s fired %d times", id, n)
		}
	}
}

func TestClusterAnotherInstanceFiresWhenTheSchedulingOneIsGone(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	nodes := startCluster(t, srv, 2)
	sse := nodes[1].openSSE(t, query("user_id", "gil"))
	sse.Ready(t)

	out := nodes[0].mustSchedule(t, map[string]any{
		"type": "t", "title": "later", "message": "m", "user_id": "gil",
		"scheduled_at": time.Now().Add(700 * time.Millisecond).UTC().Format(time.RFC3339Nano),
	})
	nodes[0].stop() // gone before the item is due
	is.NoErr(nodes[0].wait(t))

	sse.NextNotification(t, out["id"].(string))
	nodes[1].logs.waitRecord(t, "fire audit", auditRecord("fire", map[string]any{"schedule_id": out["id"]}))
}

func TestClusterRedisOutage(t *testing.T) {
	is := is.New(t)
	// Persistent: what production needs to lose nothing across a restart.
	srv := redistest.Start(t, redistest.Options{Persistent: true})
	nodes := startCluster(t, srv, 2)
	sse := nodes[1].openSSE(t, query("user_id", "hana"))
	sse.Ready(t)

	var accepted []string
	var refused int
	sendOne := func(i int) {
		status, body, err := nodes[i%2].tryJSON(http.MethodPost, "/api/v1/notifications/send", map[string]any{
			"type": "t", "title": fmt.Sprint(i), "message": "m", "user_id": "hana",
		})
		is.NoErr(err)
		switch status {
		case http.StatusCreated:
			accepted = append(accepted, body["id"].(string))
		case http.StatusServiceUnavailable:
			is.Equal(body["error"].(map[string]any)["code"], "store_unavailable")
			refused++
		default:
			t.Fatalf("send %d: status %d %v", i, status, body)
		}
	}
	for i := range 10 {
		sendOne(i)
	}
	srv.Stop()
	for i := 10; i < 20; i++ {
		sendOne(i)
	}
	status, health := nodes[0].do(t, http.MethodGet, "/health", nil)
	is.Equal(status, http.StatusServiceUnavailable)
	is.Equal(health["status"], "degraded")
	status, _ = nodes[0].do(t, http.MethodPost, "/api/v1/notifications/schedule", map[string]any{
		"type": "t", "title": "x", "message": "m", "user_id": "hana",
		"scheduled_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	})
	is.Equal(status, http.StatusServiceUnavailable)
	status, box := nodes[1].do(t, http.MethodGet, "/api/v1/notifications/user/hana", nil)
	is.Equal(status, http.StatusServiceUnavailable) // inbox reads too, in JSON
	is.Equal(box["error"].(map[string]any)["code"], "store_unavailable")
	is.Equal(refused, 10) // nothing accepted while Redis was away

	srv.Restart()
	streamtest.Eventually(t, "the instance to be healthy again", func() bool {
		status, _, err := nodes[0].tryJSON(http.MethodGet, "/health", nil)
		return err == nil && status == http.StatusOK
	})
	for i := 20; i < 30; i++ {
		sendOne(i)
	}
	is.Equal(len(accepted), 20)

	// Every accepted notification is in the inbox and reached the live
	// stream, which stayed open throughout.
	_, box = nodes[1].do(t, http.MethodGet, "/api/v1/notifications/user/hana?limit=100", nil)
	is.Equal(box["total"], float64(len(accepted)))
	got := map[string]bool{}
	for len(got) < len(accepted) {
		if f := sse.Next(t); f.Event() == "notification" {
			got[f.ID()] = true
		}
	}
	for _, id := range accepted {
		is.True(got[id])
	}
}

// TestClusterWarnsWhenRedisMayEvict: with an allkeys-* policy Redis could
// drop an inbox or a pending schedule to make room; start-up says so.
func TestClusterWarnsWhenRedisMayEvict(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Args: []string{"--maxmemory-policy", "allkeys-lru"}})
	nodes := startCluster(t, srv, 1)
	nodes[0].logs.waitRecord(t, "the eviction warning", func(m map[string]any) bool {
		msg, _ := m["msg"].(string)
		return m["level"] == "WARN" && strings.Contains(msg, "noeviction") && m["maxmemory-policy"] == "allkeys-lru"
	})
}
