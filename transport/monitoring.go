package transport

import (
	"context"
	"time"

	"notification-service/analytics"
	"notification-service/audit"
	"notification-service/instances"
)

// Monitoring is what the dashboard (GET /dashboard) and the analytics API
// read, and where the inbox reports reads. Each part is optional: without
// it its endpoint answers 404 not_enabled.
type Monitoring struct {
	// Analytics answers GET /api/v1/analytics; RetentionDays is how many
	// days it keeps, which bounds a query's range.
	Analytics     analytics.Store
	RetentionDays int
	// Reads is told of every notification marked read (the analytics'
	// Recorder).
	Reads ReadRecorder
	// Instances lists the running instances; Self is this one's id.
	Instances instances.Registry
	Self      string
	// Trail is the live audit trail (GET /api/v1/dashboard/audit and its
	// stream, …/audit/stream).
	Trail audit.TrailStore
	// Redis reads the shared Redis's status (a value encoded as JSON as
	// it is: the transport knows nothing of Redis); nil in memory mode.
	Redis func(context.Context) any
}

// ReadRecorder is told of each notification marked read: its type, its
// timestamp and when it was read.
type ReadRecorder interface {
	Read(typ string, sentAt, readAt time.Time)
}

type noReads struct{}

func (noReads) Read(string, time.Time, time.Time) {}
