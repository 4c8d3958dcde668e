package main

import (
	"net/http"
	"testing"

	"github.com/matryer/is"

	"notification-service/internal/redistest"
)

// TestClusterConnectionOwnerAcrossInstances: a browser's subscribe for its
// own connection, sent to another instance than the one holding it, is
// routed there and checked there: its own connection is changed, another
// user's is 403, as on one instance.
func TestClusterConnectionOwnerAcrossInstances(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{})
	nodes := startCluster(t, srv, 2)
	ws := nodes[1].openWS(t, query("user_id", "alice"))
	conn := ws.NextEvent(t, "ready")["connection_id"].(string)
	subscribe := "/api/v1/connections/" + conn + "/subscribe"

	status, _ := nodes[0].do(t, http.MethodPost, subscribe+"?user_id=bob", map[string]any{"channels": []string{"deals"}})
	is.Equal(status, http.StatusForbidden)
	status, sub := nodes[0].do(t, http.MethodPost, subscribe+"?user_id=alice", map[string]any{"channels": []string{"deals"}})
	is.Equal(status, http.StatusOK)
	is.Equal(sub["channels"], []any{"deals"})
	is.Equal(ws.NextEvent(t, "subscribed")["subscriptions"], []any{"deals"})
}
