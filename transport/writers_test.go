package transport

import (
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"notification-service/audit"
	"notification-service/broker"
)

// BenchmarkFanOut is the path of a broadcast after the hub's lookup:
// Deliver queues the frame on each connection, and the shared writers
// encode it and write it. Each iteration is one broadcast, waited for to
// the last byte, so nothing coalesces: ns/delivery is what one delivery
// written alone costs. The sink decides what a write is: "discard" counts
// the bytes (the service's own work), "loopback" writes to a TCP
// connection whose other end is read in this process (the system call
// included, as in production, but with the reader on the same cores).
//
//	go test ./transport -run '^$' -bench FanOut -benchmem
func BenchmarkFanOut(b *testing.B) {
	n := broker.Notification{ID: broker.NewID(), Type: "tarea", Title: "Nueva Tarea Asignada",
		Message: "Se te ha asignado una tarea importante", Channels: []string{"tareas"},
		Data: []byte(`{"task_id":"task456","priority":"high"}`), Timestamp: broker.Now(), Seq: 1}
	for _, sinkKind := range []string{"discard", "loopback"} {
		for _, transport := range []string{"sse", "ws"} {
			b.Run(sinkKind+"/"+transport, func(b *testing.B) {
				conns := 1000
				if sinkKind == "loopback" {
					conns = 200
				}
				s := New(Deps{Hub: broker.NewHub(0), Audit: audit.New(slog.New(slog.DiscardHandler)), Logger: slog.New(slog.DiscardHandler)},
					Options{HeartbeatInterval: time.Hour, QueueSize: 256, WriteTimeout: 10 * time.Second}).streams
				var got atomic.Int64
				reached := make(chan struct{}, 1)
				var target atomic.Int64
				count := func(k int) {
					if got.Add(int64(k)) >= target.Load() {
						select {
						case reached <- struct{}{}:
						default:
						}
					}
				}
				cs := make([]*conn, conns)
				for i := range cs {
					c := s.newConn(streamParams{userID: "u"}, transport, "")
					if sinkKind == "discard" {
						c.out = countingSink{count}
					} else {
						c.out = loopbackSock(b, count)
					}
					if transport == "sse" {
						c.w = sseWriter{out: c.out}
					} else {
						c.w = &wsWriter{}
					}
					c.yield(nil) // newConn gives the writer role to its caller
					cs[i] = c
				}
				f, err := broker.NotificationFrame(n, "epoch")
				if err != nil {
					b.Fatal(err)
				}
				per := len(cs[0].w.appendFrame(nil, f))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					// A new notification each time: the same one again is a
					// duplicate, which a connection drops.
					f.Seq++
					target.Add(int64(per * conns))
					for _, c := range cs {
						c.Deliver(f)
					}
					for got.Load() < target.Load() {
						<-reached
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*conns), "ns/delivery")
			})
		}
	}
}

// countingSink is a socket that takes every write at once.
type countingSink struct{ count func(int) }

func (s countingSink) Write(b []byte) (int, error)    { s.count(len(b)); return len(b), nil }
func (s countingSink) tryWrite(b []byte) (int, error) { return s.Write(b) }
func (countingSink) abort()                           {}

// loopbackSock is the server's end of a TCP connection over loopback whose
// client end is read, and counted, until the benchmark ends.
func loopbackSock(b *testing.B, count func(int)) *sock {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := client.Read(buf)
			count(k)
			if err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		server.Close()
		client.Close()
		<-done
	})
	var aborted atomic.Bool
	return newSock(server, 10*time.Second, &aborted)
}

var _ io.Writer = countingSink{}
