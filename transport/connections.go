package transport

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"notification-service/broker"
)

// The connections resource: the channels of a live connection, changed
// from outside it (POST /api/v1/connections/{connection_id}/subscribe and
// /unsubscribe), wherever the connection lives. A WebSocket's own
// subscribe frames take the same path (changeChannels).

type channelsRequest struct {
	Channels []string `json:"channels"`
}

// channelChange is one of the two changes of a connection's channels:
// what it calls on the bus, how the audit trail names it, and the event it
// pushes to the user's connections.
type channelChange struct {
	action string // subscribe, unsubscribe
	event  string // subscribed, unsubscribed
	apply  func(ctx context.Context, connID string, channels []string) (broker.Subscription, error)
}

func (s *Server) subscribing() channelChange {
	return channelChange{action: "subscribe", event: "subscribed", apply: s.bus.Subscribe}
}

func (s *Server) unsubscribing() channelChange {
	return channelChange{action: "unsubscribe", event: "unsubscribed", apply: s.bus.Unsubscribe}
}

// handleConnectionChannels changes a live connection's channels from the
// backend: the way an SSE client, which cannot talk back, subscribes.
func (s *Server) handleConnectionChannels(change channelChange) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connID := r.PathValue("connection_id")
		if !idPattern.MatchString(connID) {
			writeError(w, invalid("connection_id", "connection_id is not a valid id"))
			return
		}
		body, e := readBody(w, r, s.opts.MaxBodyBytes)
		if e != nil {
			writeError(w, e)
			return
		}
		var req channelsRequest
		if e := decodeJSON(body, &req, s.opts.MaxJSONDepth); e != nil {
			writeError(w, e)
			return
		}
		sub, err := s.changeChannels(r.Context(), change, connID, req.Channels, slog.String("via", "api"), slog.String("remote_addr", r.RemoteAddr))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, sub)
	})
}

// changeChannels is the one path for subscribe and unsubscribe, from a
// WebSocket frame or the REST API: validate, change, audit (with attrs
// saying through what and from where), and push the new set to the user's
// connections.
func (s *Server) changeChannels(ctx context.Context, change channelChange, connID string, channels []string, attrs ...slog.Attr) (broker.Subscription, error) {
	channels, e := checkChannels("channels", channels, s.opts.MaxChannels)
	if e != nil {
		return broker.Subscription{}, e
	}
	if len(channels) == 0 {
		return broker.Subscription{}, invalid("channels", "give at least one channel")
	}
	sub, err := change.apply(ctx, connID, channels)
	if err != nil {
		return broker.Subscription{}, err
	}
	s.audit.Record(change.action, append([]slog.Attr{slog.String("connection_id", connID), slog.String("user_id", sub.UserID),
		slog.Any("channels", channels)}, attrs...)...)
	f := broker.EventFrame(change.event, map[string]any{"connection_id": connID, "channels": channels, "subscriptions": nonNil(sub.Channels)})
	if err := s.bus.NotifyUser(ctx, sub.UserID, f); err != nil && !errors.Is(err, context.Canceled) {
		s.logger.Error("push subscription change", slog.String("connection_id", connID), slog.Any("error", err))
	}
	return sub, nil
}
