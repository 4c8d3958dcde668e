package analytics

import (
	"testing"
	"time"

	"notification-service/broker"
)

// BenchmarkRecorderReports is what the publish path and the delivery
// callback pay per notification: a lock and an append each (the flush
// runs elsewhere, once a second).
func BenchmarkRecorderReports(b *testing.B) {
	r := NewRecorder(NewMemory(Limits{}), RecorderOptions{MaxPending: 1 << 30})
	n := []broker.Notification{{Seq: 1, Type: "tarea", Timestamp: time.Now()}}
	for b.Loop() {
		n[0].Seq++
		r.Published(n)
		r.Delivered(n[0], 1)
	}
}
