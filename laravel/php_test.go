package laravel_test

import (
	"encoding/json"
	"testing"

	"github.com/matryer/is"

	"notification-service/internal/redistest"
)

// TestRealLaravelThroughTheIngester runs the real Laravel of e2e/laravel
// against a redis-server the ingester listens to, and checks what the
// service would publish.
func TestRealLaravelThroughTheIngester(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	rec := newRecorder()
	startIngester(t, memoryConfig(srv.Client(), rec, testLogger(t)))

	// (a) the seed's TareaCreada on 'tareas'.
	runLaravel(t, srv.Addr(), laravelPrefix, "tarea-creada", "9", "Preparar la demo")
	n := rec.waitFor(t, 1)[0]
	is.Equal(n.Type, "tarea.creada")
	is.Equal(n.Channels, []string{"tareas"})
	is.Equal(n.UserID, "")
	jsonEqual(t, n.Data, `{"tarea":{"id":9,"titulo":"Preparar la demo","user_id":42}}`)

	// (d) toOthers with the browser's socket id: excluded, and not in data.
	runLaravel(t, srv.Addr(), laravelPrefix, "to-others", "8421.77")
	n = rec.waitFor(t, 2)[1]
	is.Equal(n.Type, "mensaje.enviado")
	is.Equal(n.Channels, []string{"private-conversacion.3"})
	is.Equal(n.Exclude, "8421.77")
	jsonEqual(t, n.Data, `{"conversacion":3,"texto":"Hola a todos menos a mí"}`)

	// (e) a broadcast notification to user 42: addressed to the user,
	// under Laravel's own notification id.
	runLaravel(t, srv.Addr(), laravelPrefix, "notification", "42", "5")
	n = rec.waitFor(t, 3)[2]
	var d struct{ ID, Type string }
	is.NoErr(json.Unmarshal(n.Data, &d))
	is.Equal(n.ID, d.ID)
	is.Equal(len(n.ID), 36) // Laravel's UUID
	is.Equal(n.UserID, "42")
	is.Equal(n.Channels, nil)
	is.Equal(n.Type, `App\Notifications\TareaAsignada`)
	is.Equal(n.Title, "Nueva Tarea Asignada")
	is.Equal(n.Message, "Revisar el informe trimestral")

	// (b), (c), (f): several channels in one notification, an empty
	// payload, a notification's own "socket" kept from clients.
	runLaravel(t, srv.Addr(), laravelPrefix, "multi-channel", "3")
	runLaravel(t, srv.Addr(), laravelPrefix, "empty-payload")
	runLaravel(t, srv.Addr(), laravelPrefix, "notification-socket", "7")
	got := rec.waitFor(t, 6)
	is.Equal(got[3].Channels, []string{"pedidos", "private-orders.3", "presence-chat.3", "private-encrypted-billing.3"})
	is.Equal(got[4].Type, "cache.invalidada")
	is.Equal(got[4].Data, nil)
	is.Equal(got[5].UserID, "7")
	is.Equal(got[5].Title, "Recordatorio")
	var f map[string]any
	is.NoErr(json.Unmarshal(got[5].Data, &f))
	_, hasSocket := f["socket"]
	is.True(!hasSocket)
}

// TestRealLaravelWithAnotherPrefix: the prefix follows LARAVEL_REDIS_PREFIX
// (Laravel 11 derives laravel-database- from APP_NAME), and a broadcast
// under another prefix is not this app's.
func TestRealLaravelWithAnotherPrefix(t *testing.T) {
	is := is.New(t)
	srv, rec, in := startWithPrefix(t, "laravel-database-")

	runLaravel(t, srv.Addr(), "otra_app_", "empty-payload")
	runLaravel(t, srv.Addr(), "laravel-database-", "tarea-creada")
	is.Equal(rec.waitFor(t, 1)[0].Type, "tarea.creada")
	is.Equal(in.Stats().Received, uint64(1))
}

// TestPrefixIsMatchedLiterally: PSUBSCRIBE's pattern characters in a
// prefix match only themselves.
func TestPrefixIsMatchedLiterally(t *testing.T) {
	is := is.New(t)
	srv, rec, in := startWithPrefix(t, "app[1]*_")

	laravelBroadcast(t, srv.Client(), "app1X_", `{"event":"otra","data":[]}`, "c")
	laravelBroadcast(t, srv.Client(), "app[1]*_", `{"event":"esta","data":[]}`, "c")
	n := rec.waitFor(t, 1)[0]
	is.Equal(n.Type, "esta")
	is.Equal(n.Channels, []string{"c"})
	is.Equal(in.Stats().Received, uint64(1))
}

// startWithPrefix starts an ingester alone (memory mode) on a Redis of its
// own, for Laravel's prefix.
func startWithPrefix(t *testing.T, prefix string) (*redistest.Server, *recorder, *ingester) {
	srv := redistest.Start(t, redistest.Options{})
	rec := newRecorder()
	cfg := memoryConfig(srv.Client(), rec, testLogger(t))
	cfg.Prefix = prefix
	return srv, rec, startIngester(t, cfg)
}
