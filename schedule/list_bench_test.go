package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"notification-service/broker"
	"notification-service/internal/redistest"
)

// BenchmarkList measures one page of 50 among 100,000 pending items (the
// default MAX_PENDING_SCHEDULES), half of them due in one millisecond (a
// campaign scheduled for one instant), addressed to 1,000 users: the first
// page, a page from a cursor in the middle of the shared millisecond, and
// a user's first page. For Redis it also reports redis_us: the time Redis
// itself spent per listing (INFO commandstats), the time other clients wait
// behind it. Run it with
//
//	go test -run '^$' -bench List -benchtime 200x ./schedule/
func BenchmarkList(b *testing.B) {
	const n, users, limit = 100_000, 1000, 50
	var srv *redistest.Server // of the Redis run
	impls := []struct {
		name string
		new  func(b *testing.B) Scheduler
	}{
		{"memory", func(*testing.B) Scheduler { return NewMemory(nil, Limits{}) }},
		{"redis", func(b *testing.B) Scheduler {
			srv = redistest.Start(b, redistest.Options{})
			return newRedis(b, srv, "bench:")
		}},
	}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			srv = nil
			s := impl.new(b)
			instant := broker.Now().Add(24 * time.Hour)
			var next atomic.Int64
			var adding sync.WaitGroup
			for range 8 {
				adding.Go(func() {
					for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
						at := instant
						if i%2 == 0 {
							at = instant.Add(time.Duration(i) * time.Second)
						}
						if err := s.Add(b.Context(), newItem(at, fmt.Sprintf("user-%d", i%users))); err != nil {
							b.Errorf("add: %v", err)
							return
						}
					}
				})
			}
			adding.Wait()
			// The middle of the shared millisecond: half-way through its
			// ids, which are random in their last bits.
			mid, err := s.List(b.Context(), Query{Limit: n / 4})
			if err != nil {
				b.Fatal(err)
			}
			for _, q := range []struct {
				name  string
				query Query
			}{
				{"first_page", Query{Limit: limit}},
				{"page_inside_one_ms", Query{Limit: limit, After: mid.Next}},
				{"user_page", Query{UserID: "user-7", Limit: limit}},
			} {
				b.Run(q.name, func(b *testing.B) {
					if srv != nil {
						resetStats(b, srv)
					}
					for b.Loop() {
						page, err := s.List(b.Context(), q.query)
						if err != nil || len(page.Items) != limit {
							b.Fatalf("list: %d items, %v", len(page.Items), err)
						}
					}
					if srv != nil {
						b.ReportMetric(evalUsecPerCall(b, srv), "redis_us")
					}
				})
			}
		})
	}
}

func resetStats(b *testing.B, srv *redistest.Server) {
	if err := srv.Client().ConfigResetStat(b.Context()).Err(); err != nil {
		b.Fatal(err)
	}
}

// evalUsecPerCall reads the microseconds Redis spent per script call since
// the last reset.
func evalUsecPerCall(b *testing.B, srv *redistest.Server) float64 {
	info, err := srv.Client().Info(b.Context(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		stat, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for field := range strings.SplitSeq(stat, ",") {
			if v, ok := strings.CutPrefix(field, "usec_per_call="); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				return f
			}
		}
	}
	b.Fatalf("no evalsha in INFO commandstats")
	return 0
}
