package broker

import (
	"strconv"
	"testing"
)

// countingConn is the cheapest possible connection: it only counts.
type countingConn struct{ n int }

func (c *countingConn) Deliver(*Frame) { c.n++ }

// BenchmarkHubDeliverBroadcast is the hub's fan-out of one broadcast to
// 10,000 subscribers of a channel; ns/op divided by 10,000 is the cost of
// one delivery before the connection's writer.
func BenchmarkHubDeliverBroadcast(b *testing.B) {
	h := NewHub(0)
	for i := range 10_000 {
		if err := h.Register(strconv.Itoa(i), "u"+strconv.Itoa(i), []string{"news"}, &countingConn{}); err != nil {
			b.Fatal(err)
		}
	}
	n := Notification{ID: "x", Channels: []string{"news"}}
	f := &Frame{}
	b.ReportAllocs()
	for b.Loop() {
		h.Deliver(n, f)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/delivery")
}

// BenchmarkHubDeliverToUser routes a user-addressed notification among
// 10,000 connections of other users: an indexed lookup, not a scan.
func BenchmarkHubDeliverToUser(b *testing.B) {
	h := NewHub(0)
	for i := range 10_000 {
		if err := h.Register(strconv.Itoa(i), "u"+strconv.Itoa(i), nil, &countingConn{}); err != nil {
			b.Fatal(err)
		}
	}
	n := Notification{ID: "x", UserID: "u42"}
	f := &Frame{}
	b.ReportAllocs()
	for b.Loop() {
		h.Deliver(n, f)
	}
}

// BenchmarkNotificationFrame is the one encoding a notification gets,
// shared by every connection and both transports.
func BenchmarkNotificationFrame(b *testing.B) {
	n := Notification{ID: NewID(), Type: "tarea", Title: "Nueva Tarea Asignada", Message: "Se te ha asignado una tarea importante",
		UserID: "user123", Channels: []string{"tareas"}, Data: []byte(`{"task_id":"task456","priority":"high"}`), Timestamp: Now(), Seq: 42}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NotificationFrame(n, "epoch"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHubDeliverSeveralChannels routes a broadcast on three channels to
// 10,000 connections that each hold two of them: every connection once,
// which costs the de-duplication of the several-channel path.
func BenchmarkHubDeliverSeveralChannels(b *testing.B) {
	h := NewHub(0)
	channels := []string{"a", "b", "c"}
	for i := range 10_000 {
		held := []string{channels[i%3], channels[(i+1)%3]}
		if err := h.Register(strconv.Itoa(i), "u"+strconv.Itoa(i), held, &countingConn{}); err != nil {
			b.Fatal(err)
		}
	}
	n := Notification{ID: "x", Channels: channels}
	f := &Frame{}
	b.ReportAllocs()
	for b.Loop() {
		if reached := h.Deliver(n, f); reached != 10_000 {
			b.Fatalf("reached %d", reached)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/delivery")
}
