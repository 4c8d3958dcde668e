package transport

// Presence on the Pusher transport: the members a presence subscription
// joins and leaves in the presence store, and what the store reports by
// itself (a member gone with its instance or with a Leave sent again, this
// instance taken for dead). The subscription flow that calls these is in
// pusher.go.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"notification-service/presence"
	"notification-service/pusher"
)

// presenceFailed answers a presence join the store refused.
func (sess *pusherSession) presenceFailed(ch string, err error) {
	if errors.Is(err, presence.ErrFull) {
		sess.refuseSubscription(ch, pusher.NoCode, http.StatusForbidden, "the presence channel is full")
		return
	}
	sess.srv.logger.Error("pusher: presence join", slog.String("channel", ch), slog.Any("error", err))
	sess.refuseSubscription(ch, pusher.NoCode, http.StatusServiceUnavailable, "could not join the presence channel; retry")
}

// leavePresence removes the connection from a presence channel's members.
func (sess *pusherSession) leavePresence(ctx context.Context, ch string) {
	s := sess.srv
	userID, removed, err := s.presence.Leave(ctx, ch, sess.c.id)
	if err != nil {
		// The store sends it again until Redis answers, and its
		// member_removed comes through memberGone.
		s.logger.Warn("pusher: presence leave failed; the store retries it", slog.String("channel", ch), slog.Any("error", err))
		return
	}
	if removed {
		s.notifyChannel(ctx, ch, pusher.AppendMemberRemoved(nil, ch, userID), "")
	}
}

// pusherMembers are a presence channel's members as the protocol lists
// them.
func pusherMembers(ms []presence.Member) []pusher.Member {
	out := make([]pusher.Member, len(ms))
	for i, m := range ms {
		out[i] = pusher.Member{UserID: m.UserID, Info: m.Info}
	}
	return out
}

// memberGone tells a presence channel's subscribers that a member left
// without a Leave of this instance's answering so: its instance died, or
// the Leave failed and the store sent it again.
func (s *Server) memberGone(channel, userID string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
	defer cancel()
	s.notifyChannel(ctx, channel, pusher.AppendMemberRemoved(nil, channel, userID), "")
}

// presenceLapsed ends this instance's Pusher connections that hold a
// presence channel: the others took this instance for dead and removed its
// members, so the connections reconnect (4200) and join again.
func (s *Server) presenceLapsed() {
	s.streams.each(func(c *conn) {
		pw, ok := c.w.(*pusherWriter)
		if !ok {
			return
		}
		pw.sess.mu.Lock()
		holds := false
		for ch := range pw.sess.channels {
			holds = holds || pusher.KindOf(ch) == pusher.Presence
		}
		pw.sess.mu.Unlock()
		if holds {
			c.kick(reasonResync)
		}
	})
}
