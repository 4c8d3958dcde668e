// Package audit writes the service's audit trail: one structured log record
// per connect, disconnect, subscribe, unsubscribe, send, delivery, read,
// delete, schedule, fire and cancel. Every component records through one
// Log so every record has the same shape and can be filtered by "audit".
package audit

import (
	"context"
	"log/slog"
)

// Log records audit events. The zero value discards them.
type Log struct {
	logger *slog.Logger
}

// New returns a Log writing to logger.
func New(logger *slog.Logger) Log { return Log{logger: logger} }

// Record writes one audit event: action names what happened ("send",
// "connect", ...), attrs say to whom and through what (ids, user,
// transport, remote address).
func (l Log) Record(action string, attrs ...slog.Attr) {
	if l.logger == nil {
		return
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "audit",
		append([]slog.Attr{slog.String("action", action)}, attrs...)...)
}
