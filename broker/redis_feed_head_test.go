package broker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestFrameTypeAndTime: what the feed reader hands the delivery callback
// is what decoding the frame in full gives, whatever the type, title or
// data hold.
func TestFrameTypeAndTime(t *testing.T) {
	is := is.New(t)
	ts := time.Date(2026, 11, 27, 3, 28, 58, 496_000_000, time.UTC)
	for _, n := range []Notification{
		{ID: "a", Type: "tarea", Title: "t", Timestamp: ts},
		{ID: "b", Type: `App\Events\Pedido "quoted"`, Timestamp: ts},
		{ID: "c", Type: "x", Title: `"type":"fake"`, Message: `"timestamp":"2001-01-01T00:00:00Z"`, Timestamp: ts},
		{ID: "d", Type: "y", Data: json.RawMessage(`{"type":"inner","timestamp":"2001-01-01T00:00:00Z","n":{"timestamp":"x"}}`), Timestamp: ts},
		{ID: "e", Type: "", Channels: []string{"a,b"}, Timestamp: ts},
		{ID: "f", Type: "ünïcödé ✓", UserID: "u", Timestamp: ts.Add(123 * time.Microsecond)},
	} {
		f, err := NotificationFrame(n, "epoch")
		is.NoErr(err)
		typ, at := frameTypeAndTime(f.JSON)
		is.Equal(typ, n.Type)
		is.True(at.Equal(n.Timestamp))
	}
	typ, at := frameTypeAndTime([]byte(`not json`))
	is.Equal(typ, "")
	is.True(at.IsZero())
}

func BenchmarkFrameTypeAndTime(b *testing.B) {
	f, _ := NotificationFrame(Notification{ID: NewID(), Type: "tarea", Title: "Nueva Tarea Asignada", Message: "Se te ha asignado una tarea importante",
		UserID: "user123", Channels: []string{"tareas"}, Data: json.RawMessage(`{"task_id":"task456","priority":"high"}`), Timestamp: Now()}, "epoch")
	for b.Loop() {
		frameTypeAndTime(f.JSON)
	}
}
