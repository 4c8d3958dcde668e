package audit_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/matryer/is"

	"notification-service/audit"
)

func TestRecordShape(t *testing.T) {
	is := is.New(t)
	var buf bytes.Buffer
	log := audit.New(slog.New(slog.NewJSONHandler(&buf, nil)))

	log.Record("send", slog.String("notification_id", "n1"), slog.String("user_id", "u1"))

	var rec map[string]any
	is.NoErr(json.Unmarshal(buf.Bytes(), &rec))
	is.Equal(rec["msg"], "audit")
	is.Equal(rec["level"], "INFO")
	is.Equal(rec["action"], "send")
	is.Equal(rec["notification_id"], "n1")
	is.Equal(rec["user_id"], "u1")
}

func TestZeroLogDiscards(t *testing.T) {
	var log audit.Log
	log.Record("send", slog.String("user_id", "u1")) // must not panic
}
