// Package publish is the one way a notification enters the bus: a REST send,
// a scheduled item coming due, an event from Laravel (its Pusher HTTP API
// calls or its redis broadcaster). Whatever the entry, the notification is
// stamped, published, audited and counted here, the same way, so a new way
// in is a caller of Publish and nothing more.
//
// It owns no state and knows nothing of HTTP, Redis or where a request came
// from beyond the Source it names; validation belongs to whoever decoded the
// request.
package publish

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"notification-service/audit"
	"notification-service/broker"
	"notification-service/schedule"
)

// Source names the way a notification came in: the label of the accepted
// metric and the audit record's "source".
type Source string

const (
	// SourceAPI is POST /api/v1/notifications/send.
	SourceAPI Source = "send"
	// SourcePusherAPI is Pusher's HTTP API (Laravel's pusher and reverb
	// broadcasters).
	SourcePusherAPI Source = "pusher_api"
	// SourceLaravelRedis is Laravel's redis broadcaster.
	SourceLaravelRedis Source = "laravel_redis"
)

// Metrics is what publishing reports (metrics.Metrics implements it).
type Metrics interface {
	// NotificationAccepted counts a publish by its source.
	NotificationAccepted(kind string)
	ScheduleFired(lateness time.Duration)
}

// Observer is told of every notification published, with its Seq and
// Timestamp, once the bus took it (the analytics count them as sent). It
// runs on the publishing request's path: it must be quick.
type Observer interface {
	Published(ns []broker.Notification)
}

// Publisher publishes notifications through a bus.
type Publisher struct {
	bus       broker.Bus
	audit     audit.Log
	metrics   Metrics
	observers []Observer
}

// New returns a Publisher on bus, telling observers of what it published;
// metrics may be nil.
func New(bus broker.Bus, auditLog audit.Log, metrics Metrics, observers ...Observer) *Publisher {
	if metrics == nil {
		metrics = noMetrics{}
	}
	return &Publisher{bus: bus, audit: auditLog, metrics: metrics, observers: observers}
}

func (p *Publisher) observe(ns []broker.Notification) {
	for _, o := range p.observers {
		o.Published(ns)
	}
}

// Publish stamps ns with the current time (and an id, where one has none),
// publishes them as one step
// (broker.Bus.Publish: on error nothing was stored, or the error wraps
// store.ErrUnavailable and publishing the same ids again is safe), and
// records one "send" audit event per notification id, with attrs (the
// caller's remote address, say). It returns the notifications as
// published, with their timestamp and sequence number.
func (p *Publisher) Publish(ctx context.Context, src Source, ns []broker.Notification, attrs ...slog.Attr) ([]broker.Notification, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	stamped := stamp(ns)
	out, err := p.bus.Publish(ctx, stamped...)
	if err != nil {
		return nil, err
	}
	for _, group := range byID(out) {
		n := group[0]
		record := append([]slog.Attr{
			slog.String("notification_id", n.ID), slog.Any("user_ids", userIDs(group)),
			slog.Any("channels", n.Channels), slog.String("type", n.Type), slog.String("source", string(src)),
		}, attrs...)
		p.audit.Record("send", record...)
	}
	p.metrics.NotificationAccepted(string(src))
	p.observe(out)
	return out, nil
}

// Fire publishes a scheduled item that has come due: the scheduler's
// FireFunc.
func (p *Publisher) Fire(ctx context.Context, it schedule.Item) error {
	// Lateness is the scheduler's: from the time asked for to this call.
	lateness := time.Since(it.ScheduledAt)
	ns := stamp(it.Notifications)
	out, err := p.bus.Publish(ctx, ns...)
	if err != nil {
		return fmt.Errorf("publish: fire %s: %w", it.ID, err)
	}
	p.audit.Record("fire", slog.String("schedule_id", it.ID), slog.Any("user_ids", it.UserIDs()),
		slog.String("type", ns[0].Type), slog.Any("channels", ns[0].Channels), slog.Time("scheduled_at", it.ScheduledAt),
		slog.Duration("lateness", lateness))
	p.metrics.ScheduleFired(lateness)
	p.observe(out)
	return nil
}

// stamp returns a copy of ns, each with the same timestamp, now, and an
// id where it has none (a broadcast mapped from Laravel's event).
func stamp(ns []broker.Notification) []broker.Notification {
	now := broker.Now()
	out := make([]broker.Notification, len(ns))
	for i, n := range ns {
		n.Timestamp = now
		if n.ID == "" {
			n.ID = broker.NewID()
		}
		out[i] = n
	}
	return out
}

// byID splits ns into runs of one id: a send to several users is one
// notification id with one copy per user; an ingested broadcast may carry
// several ids.
func byID(ns []broker.Notification) [][]broker.Notification {
	var groups [][]broker.Notification
	start := 0
	for i := 1; i <= len(ns); i++ {
		if i == len(ns) || ns[i].ID != ns[start].ID {
			groups = append(groups, ns[start:i])
			start = i
		}
	}
	return groups
}

// UserIDs lists the users ns are addressed to, in order.
func UserIDs(ns []broker.Notification) []string { return userIDs(ns) }

func userIDs(ns []broker.Notification) []string {
	var ids []string
	for _, n := range ns {
		if n.UserID != "" {
			ids = append(ids, n.UserID)
		}
	}
	return ids
}

type noMetrics struct{}

func (noMetrics) NotificationAccepted(string) {}
func (noMetrics) ScheduleFired(time.Duration) {}
