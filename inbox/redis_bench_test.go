package inbox

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"notification-service/broker"
	"notification-service/internal/redistest"
)

func BenchmarkRedisAppend(b *testing.B) {
	client := redistest.Start(b, redistest.Options{}).Client()
	s := NewRedis(client, "bench:", Limits{MaxPerUser: 100, MaxAge: 24 * time.Hour})
	n := broker.Notification{
		Type:      "info",
		Title:     "Order shipped",
		Message:   "Your order #1234 is on its way",
		Channels:  []string{"orders"},
		Data:      json.RawMessage(`{"order":1234,"carrier":"ups"}`),
		Timestamp: broker.Now(),
	}
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		seq++
		n.ID = fmt.Sprint("n", seq)
		n.UserID = fmt.Sprint("user", seq%100)
		n.Seq = seq
		if err := s.Append(b.Context(), n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisSince(b *testing.B) {
	for _, missed := range []int{1, 10, 100} {
		b.Run(fmt.Sprint(missed), func(b *testing.B) {
			client := redistest.Start(b, redistest.Options{}).Client()
			s := NewRedis(client, "bench:", Limits{MaxPerUser: 1000, MaxAge: 24 * time.Hour})
			ns := make([]broker.Notification, 1000)
			for i := range ns {
				ns[i] = note("alice", uint64(i+1))
				ns[i].Data = json.RawMessage(`{"order":1234,"carrier":"ups"}`)
			}
			if err := s.Append(b.Context(), ns...); err != nil {
				b.Fatal(err)
			}
			after := uint64(len(ns) - missed)
			b.ReportAllocs()
			for b.Loop() {
				got, err := s.Since(b.Context(), "alice", after)
				if err != nil || len(got) != missed {
					b.Fatalf("since: %d notifications, %v", len(got), err)
				}
			}
		})
	}
}
