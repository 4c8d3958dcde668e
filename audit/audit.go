// Package audit writes the service's audit trail: one structured log record
// per connect, disconnect, subscribe, unsubscribe, send, delivery, read,
// delete, schedule, fire and cancel. Every component records through one
// Log so every record has the same shape and can be filtered by "audit".
//
// Beside the log, a Log may offer its events to sinks: the live trail the
// dashboard shows (Trail) is one, a sample of the events with a count of
// all of them, shared between instances through a TrailStore. The log
// stays the complete record; the trail is bounded whatever the traffic.
package audit

import (
	"context"
	"log/slog"
)

// Log records audit events. The zero value discards them.
type Log struct {
	logger *slog.Logger
	sinks  []Sink
}

// Sink is told of every event recorded. Offer runs on the recording path
// (a send, a delivery): it must be quick and must not keep attrs beyond
// the call without copying them.
type Sink interface {
	Offer(action string, attrs []slog.Attr)
}

// New returns a Log writing to logger and offering each event to sinks.
func New(logger *slog.Logger, sinks ...Sink) Log { return Log{logger: logger, sinks: sinks} }

// Record writes one audit event: action names what happened ("send",
// "connect", ...), attrs say to whom and through what (ids, user,
// transport, remote address).
func (l Log) Record(action string, attrs ...slog.Attr) {
	for _, s := range l.sinks {
		s.Offer(action, attrs)
	}
	if l.logger == nil {
		return
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "audit",
		append([]slog.Attr{slog.String("action", action)}, attrs...)...)
}
