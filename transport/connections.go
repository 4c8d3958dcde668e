package transport

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"notification-service/auth"
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
	apply  func(ctx context.Context, c broker.ChannelChange) (broker.Subscription, error)
}

func (s *Server) subscribing() channelChange {
	return channelChange{action: "subscribe", event: "subscribed", apply: s.bus.Subscribe}
}

func (s *Server) unsubscribing() channelChange {
	return channelChange{action: "unsubscribe", event: "unsubscribed", apply: s.bus.Unsubscribe}
}

// handleConnectionChannels changes a live connection's channels from
// outside it: from the backend, or from the browser that holds it (an SSE
// client cannot talk back on its stream), as connectionOwner allows.
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
		owner := ownerOf(r)
		if change.action == "subscribe" && owner.userID != "" { // a browser, not the backend
			if e := forbiddenChannel(owner.claims, req.Channels); e != nil {
				s.refuse(w, r, e)
				return
			}
		}
		cc := broker.ChannelChange{ConnID: connID, Channels: req.Channels, Owner: owner.userID}
		sub, err := s.changeChannels(r.Context(), change, cc, slog.String("via", "api"), slog.String("remote_addr", r.RemoteAddr))
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
func (s *Server) changeChannels(ctx context.Context, change channelChange, cc broker.ChannelChange, attrs ...slog.Attr) (broker.Subscription, error) {
	connID := cc.ConnID
	channels, e := checkChannels("channels", cc.Channels, s.opts.MaxChannels)
	if e != nil {
		return broker.Subscription{}, e
	}
	if len(channels) == 0 {
		return broker.Subscription{}, invalid("channels", "give at least one channel")
	}
	cc.Channels = channels
	sub, err := change.apply(ctx, cc)
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

// connectionOwner guards the channels of a live connection: the backend
// (the API key) may change any connection's; a browser only its own. In
// token mode that is the connection of its token's user, and a subscribe
// stays within the token's channels claim; in open mode the browser names
// its user with ?user_id=, as its stream does. Another user's connection
// is 403 (broker.ErrNotOwner). With no API key and no user_id, any
// connection, as in the seed.
func (s *Server) connectionOwner(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var o owner
		switch {
		case s.apiKey.IsSet() && s.presentsAPIKey(r):
			if e := s.checkAPIKey(r); e != nil {
				s.refuse(w, r, e)
				return
			}
		case s.tokens != nil:
			claims, e := s.authenticateUser(r)
			if e != nil {
				s.refuse(w, r, e)
				return
			}
			o = owner{userID: claims.UserID, claims: &claims}
		default:
			userID := r.URL.Query().Get("user_id")
			if userID == "" && s.apiKey.IsSet() {
				s.refuse(w, r, s.checkAPIKey(r)) // neither the key nor a user
				return
			}
			if userID != "" {
				if e := userParam("user_id", userID); e != nil {
					writeError(w, e)
					return
				}
			}
			o = owner{userID: userID}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ownerKey{}, o)))
	})
}

// owner is who changes a connection's channels: a user (userID, with its
// token's claims in token mode), or "" for the backend.
type owner struct {
	userID string
	claims *auth.Claims
}

type ownerKey struct{}

func ownerOf(r *http.Request) owner {
	o, _ := r.Context().Value(ownerKey{}).(owner)
	return o
}
