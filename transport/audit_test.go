package transport_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

func TestAPIAuditRecords(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t)
	sse := ts.dialSSE(t, query("user_id", "u"))
	sse.Ready(t)

	id := ts.send(t, map[string]any{"title": "audited", "user_id": "u", "channels": []any{"c"}})
	send := ts.Logs.Records("send")
	is.Equal(len(send), 1)
	is.Equal(send[0]["notification_id"], id)
	is.Equal(apiStrings(send[0]["user_ids"]), []string{"u"})
	is.Equal(apiStrings(send[0]["channels"]), []string{"c"})
	is.Equal(send[0]["type"], "info")
	delivery := ts.Logs.Records("delivery")
	is.Equal(len(delivery), 1)
	is.Equal(delivery[0]["notification_id"], id)
	is.Equal(delivery[0]["connections"], float64(0)) // the connection is not on "c"

	direct := ts.send(t, map[string]any{"title": "direct", "user_id": "u"})
	sse.NextNotification(t, direct)
	delivery = ts.Logs.Records("delivery")
	is.Equal(len(delivery), 2)
	is.Equal(delivery[1]["notification_id"], direct)
	is.Equal(delivery[1]["connections"], float64(1))

	status, _, _ := ts.do(t, http.MethodPut, "/api/v1/notifications/u/"+id+"/read", nil)
	is.Equal(status, http.StatusOK)
	sse.NextEvent(t, "read")
	read := ts.Logs.Records("read")
	is.Equal(len(read), 1)
	is.Equal(read[0]["notification_id"], id)
	is.Equal(read[0]["user_id"], "u")

	status, _, _ = ts.do(t, http.MethodPut, "/api/v1/notifications/u/read-all", nil)
	is.Equal(status, http.StatusOK)
	sse.NextEvent(t, "read_all")
	readAll := ts.Logs.Records("read_all")
	is.Equal(len(readAll), 1)
	is.Equal(readAll[0]["user_id"], "u")
	is.Equal(readAll[0]["updated"], float64(1))

	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/notifications/u/"+id, nil)
	is.Equal(status, http.StatusNoContent)
	sse.NextEvent(t, "deleted")
	del := ts.Logs.Records("delete")
	is.Equal(len(del), 1)
	is.Equal(del[0]["notification_id"], id)
	is.Equal(del[0]["user_id"], "u")

	sched := apiSchedule(t, ts, map[string]any{"title": "later", "user_id": "u", "scheduled_at": apiAt(time.Now().Add(time.Hour))})
	rec := ts.Logs.Records("schedule")
	is.Equal(len(rec), 1)
	is.Equal(rec[0]["schedule_id"], sched["id"])
	is.Equal(apiStrings(rec[0]["user_ids"]), []string{"u"})
	is.True(rec[0]["scheduled_at"] != nil)

	status, _, _ = ts.do(t, http.MethodDelete, "/api/v1/schedules/"+sched["id"].(string), nil)
	is.Equal(status, http.StatusOK)
	rec = ts.Logs.Records("cancel")
	is.Equal(len(rec), 1)
	is.Equal(rec[0]["schedule_id"], sched["id"])
	is.Equal(apiStrings(rec[0]["user_ids"]), []string{"u"})

	due := apiSchedule(t, ts, map[string]any{"title": "now", "user_id": "u", "scheduled_at": apiAt(time.Now().Add(-time.Minute))})
	sse.NextNotification(t, due["id"].(string))
	streamtest.Eventually(t, "the fire audit record", func() bool { return len(ts.Logs.Records("fire")) == 1 })
	is.Equal(ts.Logs.Records("fire")[0]["schedule_id"], due["id"])

	for _, r := range append(send, read...) {
		is.True(r["remote_addr"] != nil && r["remote_addr"] != "")
	}
}
