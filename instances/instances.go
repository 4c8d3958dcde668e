// Package instances owns the list of the service's running instances, as
// the dashboard shows it: every instance reports itself (a Report: who it
// is, its connections, its counters and their last minute) every
// heartbeat, and an instance that stops reporting leaves the list within a
// bound. In memory mode the list is the one instance; in Redis mode every
// instance reads every other's reports from Redis.
//
// It measures nothing itself: Self turns samples of the service's own
// counters (taken by the caller, from the metrics) into Reports. It knows
// nothing of HTTP.
package instances

import (
	"context"
	"time"
)

// Report is what an instance says of itself.
type Report struct {
	ID      string    `json:"id"`
	Version string    `json:"version"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// At is when the report was made, by the instance's clock.
	At time.Time `json:"at"`
	// Connections counts live streams by transport (sse, ws, pusher).
	Connections map[string]int `json:"connections"`
	// Totals are counters since the instance started.
	Totals Totals `json:"totals"`
	// PerSecond is the last minute, oldest first, a point a heartbeat.
	PerSecond Series `json:"per_second"`
	// LastMinute counts what the last minute (PerSecond's span) added.
	LastMinute Counts `json:"last_minute"`
	// Latency is the delivery latency over the last minute.
	Latency Latency `json:"latency"`
	// Actions counts audit events by action ("send", "delivery", ...).
	Actions map[string]Activity `json:"actions,omitempty"`
}

// Totals are an instance's counters since it started.
type Totals struct {
	Accepted      uint64 `json:"accepted"`
	Deliveries    uint64 `json:"deliveries"`
	DroppedFrames uint64 `json:"dropped_frames"`
	SlowConsumers uint64 `json:"slow_consumers"`
}

// Counts are what an instance accepted and delivered in a span.
type Counts struct {
	Accepted   uint64 `json:"accepted"`
	Deliveries uint64 `json:"deliveries"`
}

// Series holds rates a heartbeat apart, oldest first.
type Series struct {
	Accepted   []float64 `json:"accepted"`
	Deliveries []float64 `json:"deliveries"`
}

// Latency is estimated from the delivery latency histogram's buckets over
// the last minute (linear within a bucket, as Prometheus's
// histogram_quantile): P50 and P99 in seconds, and how many deliveries they
// are of. With no delivery both are zero.
type Latency struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Count uint64  `json:"count"`
}

// Activity counts events over the last second and the last minute.
type Activity struct {
	LastSecond int `json:"last_second"`
	LastMinute int `json:"last_minute"`
}

// Registry is the list of live instances. Implementations are safe for
// concurrent use and share contract_test.go.
//
// A registry shared by instances (Redis) fails with an error wrapping
// store.ErrUnavailable while it cannot be reached.
type Registry interface {
	// Beat records r as the latest report of instance r.ID, listed until
	// the registry's lapse passes without another Beat.
	Beat(ctx context.Context, r Report) error
	// Leave takes an instance off the list at once: its graceful stop.
	Leave(ctx context.Context, id string) error
	// List returns the latest report of every live instance, ordered by
	// Started, then ID.
	List(ctx context.Context) ([]Report, error)
}
