package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
)

// TestLaravelRedisBroadcasterThroughTwoInstances: a real Laravel 8
// (e2e/laravel, Debian's php-laravel-framework) broadcasts with its own
// RedisBroadcaster on the Redis two instances share. Each broadcast is
// published once, not once per instance: the seed's TareaCreada reaches the
// 'tareas' subscribers on both instances once each; a broadcast
// notification to user 42 lands in 42's inbox once and reaches 42's SSE
// and WebSocket clients, on either instance, once each.
func TestLaravelRedisBroadcasterThroughTwoInstances(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	const laravelPrefix = "laravel_database_"
	nodes := startCluster(t, srv, 2, "LARAVEL_REDIS_PREFIX", laravelPrefix)
	tareas1 := nodes[0].openSSE(t, query("user_id", "ana", "channels", "tareas"))
	tareas1.Ready(t)
	tareas2 := nodes[1].openWS(t, query("user_id", "ben", "channels", "tareas"))
	tareas2.Ready(t)
	user42sse := nodes[0].openSSE(t, query("user_id", "42"))
	user42sse.Ready(t)
	user42ws := nodes[1].openWS(t, query("user_id", "42"))
	user42ws.Ready(t)
	// Both instances listen before Laravel speaks (pub/sub keeps nothing).
	streamtest.Eventually(t, "both instances subscribed to Laravel's channels", func() bool {
		return patternSubscribers(t, srv) == 2
	})

	runLaravel(t, srv.Addr(), laravelPrefix, "tarea-creada", "9", "Preparar la demo")
	for _, s := range []streamtest.Stream{tareas1, tareas2} {
		n := s.NextEvent(t, "notification")
		is.Equal(n["type"], "tarea.creada")
		is.Equal(n["data"].(map[string]any)["tarea"].(map[string]any)["titulo"], "Preparar la demo")
	}

	runLaravel(t, srv.Addr(), laravelPrefix, "notification", "42", "5")
	first := user42sse.NextEvent(t, "notification")
	is.Equal(first["type"], `App\Notifications\TareaAsignada`)
	is.Equal(user42ws.NextEvent(t, "notification")["id"], first["id"])
	status, inbox := nodes[1].do(t, http.MethodGet, "/api/v1/notifications/user/42", nil)
	is.Equal(status, http.StatusOK)
	is.Equal(inbox["total"], float64(1))
	is.Equal(inbox["notifications"].([]any)[0].(map[string]any)["id"], first["id"])

	// Nothing came twice: a marker sent after arrives next everywhere.
	marker := send(t, nodes[1], map[string]any{"title": "marker", "user_id": "42"})
	is.Equal(user42sse.NextEvent(t, "notification")["id"], marker["id"])
	is.Equal(user42ws.NextEvent(t, "notification")["id"], marker["id"])
	marker = send(t, nodes[0], map[string]any{"title": "marker", "channels": []string{"tareas"}})
	is.Equal(tareas1.NextEvent(t, "notification")["id"], marker["id"])
	is.Equal(tareas2.NextEvent(t, "notification")["id"], marker["id"])
}

// patternSubscribers counts the clients holding a pattern subscription
// (PUBSUB NUMPAT counts distinct patterns, not clients).
func patternSubscribers(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	list, err := srv.Client().ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(list, " psub=1 ")
}

// runLaravel runs php e2e/laravel/broadcast.php with args against the
// Redis at addr, as Laravel's RedisBroadcaster publishes.
func runLaravel(t *testing.T, addr, prefix string, args ...string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("php", append([]string{"e2e/laravel/broadcast.php"}, args...)...)
	cmd.Env = append(os.Environ(), "REDIS_HOST="+host, "REDIS_PORT="+port, "LARAVEL_REDIS_PREFIX="+prefix)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("php %s: %v\n%s(scripts/test installs php-cli php-laravel-framework php-predis)", strings.Join(args, " "), err, out)
	}
}
