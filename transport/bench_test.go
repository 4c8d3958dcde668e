package transport_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"notification-service/broker"
	"notification-service/internal/streamtest"
)

// BenchmarkBroadcastSSE measures end-to-end fan-out: one broadcast per
// iteration to every subscriber of a channel, each a real SSE client over
// loopback, counting deliveries per second until every client has them all.
//
//	go test ./transport -run '^$' -bench BroadcastSSE -benchtime 200x
func BenchmarkBroadcastSSE(b *testing.B) {
	const clients = 1000
	ts := newTestServer(b, func(o *testConfig) {
		o.QueueSize = 1024
	})
	var received atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: 0}}
	for range clients {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/sse?user_id=bench&channels=bench", nil)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		readers.Go(func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if bytes.HasPrefix(sc.Bytes(), []byte(`data: {"event":"notification"`)) {
					received.Add(1)
				}
			}
		})
	}
	streamtest.Eventually(b, "every client registered", func() bool { return ts.Hub.Len() == clients })
	n := broker.Notification{Type: "info", Title: "bench", Channels: []string{"bench"}, Timestamp: broker.Now()}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		n.ID = broker.NewID()
		if _, err := ts.Bus.Publish(context.Background(), n); err != nil {
			b.Fatal(err)
		}
		// Stay within the per-connection queue: a benchmark that overflows
		// it measures slow-consumer closes, not delivery. This poll and the
		// one below are the measurement's own pacing, in microseconds: an
		// event per delivery would cost more than what it measures, and
		// streamtest.Eventually's interval would blur it.
		for int64(i+1)*clients-received.Load() > 100*clients {
			time.Sleep(50 * time.Microsecond)
		}
	}
	want := int64(b.N) * clients
	for received.Load() < want {
		if time.Since(start) > time.Minute {
			b.Fatalf("received %d of %d deliveries", received.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	cancel()
	readers.Wait()
}
