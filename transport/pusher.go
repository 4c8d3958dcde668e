package transport

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"notification-service/broker"
	"notification-service/presence"
	"notification-service/pusher"
)

// handlePusher serves GET /app/{key}: the Pusher Channels protocol (version
// 7) that laravel-echo with pusher-js speaks, beside SSE and /ws. A Pusher
// connection is a conn like the others (the hub, the writer, heartbeats,
// shutdown); what is its own is here: the handshake, the client's frames
// (subscribe with Laravel's channel signatures, presence, client events,
// pings) and how frames look on the wire (pusher_frames.go).
//
// The connection belongs to no user until it subscribes to its user's
// private channel (private-App.Models.User.{id}, authorized by Laravel's
// /broadcasting/auth): from then on it receives that user's notifications,
// as Laravel's BroadcastNotificationCreated events on that channel.
func (s *Server) handlePusher() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := s.checkUpgrade(r); e != nil {
			s.refuse(w, r, e)
			return
		}
		if !s.streams.started() {
			writeError(w, shuttingDownError())
			return
		}
		p := streamParams{}
		c := s.streams.newConn(p, "pusher", r.RemoteAddr)
		c.release = s.streams.ended
		c.registered = make(chan struct{})
		sess := &pusherSession{srv: s, c: c, channels: make(map[string]pusherChannel)}
		hj := &smallBuffers{ResponseWriter: w, timeout: s.opts.WriteTimeout, aborted: &c.aborted}
		ws, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
			InsecureSkipVerify: slices.Contains(s.opts.AllowedOrigins, "*"),
			OriginPatterns:     s.opts.AllowedOrigins,
			CompressionMode:    websocket.CompressionDisabled,
			OnPongReceived:     func(context.Context, []byte) { c.pong() },
			OnPingReceived: func(_ context.Context, payload []byte) bool {
				c.sendControl(appendWSFrame(nil, wsOpPong, payload))
				return false
			},
		})
		if err != nil {
			c.release()
			s.logger.Info("pusher: websocket accept failed", slog.String("remote_addr", r.RemoteAddr), slog.Any("error", err))
			return
		}
		// Refusals from here on are the protocol's: pusher:error, then a
		// close code that tells pusher-js whether and when to come back.
		if code, msg := s.pusherRefusal(r); code != pusher.NoCode {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
			_ = ws.Write(ctx, websocket.MessageText, pusher.AppendError(nil, code, msg))
			_ = ws.Close(websocket.StatusCode(code), msg)
			cancel()
			c.release()
			return
		}
		ws.SetReadLimit(s.opts.MaxFrameBytes)
		c.out = hj.sock
		c.w = &pusherWriter{wsWriter: wsWriter{ws: ws, out: hj.sock}, sess: sess}
		c.peerDone = make(chan struct{})
		go sess.read(ws)
		s.streams.start(r.Context(), c, p)
	})
}

// pusherRefusal is why a Pusher connection may not go on, as the
// protocol's code and message, or NoCode.
func (s *Server) pusherRefusal(r *http.Request) (pusher.Code, string) {
	app := s.opts.PusherApp
	if app == nil || r.PathValue("key") != app.Key {
		return pusher.CodeAppNotFound, "no app with this key here (PUSHER_APP_KEY)"
	}
	if code := pusher.CheckProtocolVersion(r.URL.Query().Get("protocol")); code != pusher.NoCode {
		return code, code.Message()
	}
	if e := s.allowConnectFrom(r); e != nil {
		return pusher.CodeOverCapacity, e.Message
	}
	return pusher.NoCode, ""
}

// pusherProtocolFrame marks a frame that is a Pusher protocol message
// already encoded (a subscription's answer, a member joining, a client
// event): only Pusher connections carry it, as is.
const pusherProtocolFrame = "pusher"

// protocolFrame wraps an encoded Pusher message for the writer.
func protocolFrame(msg []byte) *broker.Frame {
	return &broker.Frame{Event: pusherProtocolFrame, Only: "pusher", JSON: msg}
}

// pusherChannel is one channel a Pusher connection holds.
type pusherChannel struct {
	// member is the connection's presence member in a presence channel;
	// zero elsewhere.
	member pusher.Member
}

// pusherSession is what a Pusher connection knows beyond its conn: its
// channels as the protocol sees them (presence members included), the user
// its user channel named, and its allowance of client events. The reader
// goroutine changes it; the writer reads it while framing notifications.
type pusherSession struct {
	srv *Server
	c   *conn

	mu       sync.Mutex
	channels map[string]pusherChannel
	// userID is the user whose private channel the connection holds ("":
	// none); userChannel that channel's name.
	userID, userChannel string
	// releaseUser gives back the user's connection slot.
	releaseUser func()
	// clientEvents limits client-* events; made on the first one.
	clientEvents *rate.Limiter
}

// subscribed reports whether the connection holds ch.
func (sess *pusherSession) subscribed(ch string) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	_, ok := sess.channels[ch]
	return ok
}

// read handles the client's frames until the connection ends. A bad frame
// gets a pusher:error and the connection stays open.
//
// On its way out it leaves the connection's channels and gives back its
// user's slot. The writer's end leaves them sooner, but end is skipped
// when a write failed (a slow consumer, a peer gone), and it can run while
// a subscription is still under way here: what that subscription adds
// would stay, a presence member for as long as the instance lives. The
// reader returns only once the connection is closed, after any frame it
// was acting on, and conn.finish waits for it.
func (sess *pusherSession) read(ws *websocket.Conn) {
	c := sess.c
	defer close(c.peerDone)
	defer sess.leaveAll()
	<-c.registered
	for {
		typ, data, err := ws.Read(context.Background())
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				c.kick(reasonFrameTooLarge)
			} else {
				c.kick(reasonClientClosed)
			}
			return
		}
		sess.actAside(typ, data)
	}
}

// actAside carries out one client frame aside from the reader (aside).
func (sess *pusherSession) actAside(typ websocket.MessageType, data []byte) {
	aside(func() {
		ctx, cancel := context.WithTimeout(context.Background(), sess.srv.opts.WriteTimeout)
		defer cancel()
		sess.act(ctx, typ, data)
	})
}

// act carries out one client frame; its answers (send) go out through the
// connection's writer, in order with everything else it receives.
func (sess *pusherSession) act(ctx context.Context, typ websocket.MessageType, data []byte) {
	if typ != websocket.MessageText {
		sess.send(pusher.AppendError(nil, pusher.NoCode, "send Pusher messages as JSON text frames"))
		return
	}
	msg, err := pusher.ParseClientMessage(data, int(sess.srv.opts.MaxFrameBytes))
	if err != nil {
		sess.send(pusher.AppendErrorFor(nil, err))
		return
	}
	switch msg.Kind {
	case pusher.MessagePing:
		sess.send(pusher.AppendPong(nil))
	case pusher.MessagePong:
		sess.c.pong()
	case pusher.MessageSubscribe:
		sess.subscribe(ctx, msg)
	case pusher.MessageUnsubscribe:
		sess.unsubscribe(ctx, msg.Channel)
	case pusher.MessageClientEvent:
		sess.clientEvent(ctx, msg)
	default:
		sess.send(pusher.AppendError(nil, pusher.NoCode, "unsupported event "+msg.Event))
	}
}

// send queues Pusher messages for the connection, one WebSocket message
// each.
func (sess *pusherSession) send(msgs ...[]byte) {
	for _, m := range msgs {
		sess.c.Deliver(protocolFrame(m))
	}
}

// refuseSubscription answers a subscription that did not happen: a
// pusher:error (code, or null) and pusher:subscription_error on the
// channel, which Echo's .error() callback receives.
func (sess *pusherSession) refuseSubscription(ch string, code pusher.Code, status int, message string) {
	data, _ := json.Marshal(map[string]any{"type": "AuthError", "error": message, "status": status})
	sess.send(pusher.AppendError(nil, code, message), pusher.AppendEvent(nil, "pusher:subscription_error", ch, data))
}

// subscribe joins a channel: Laravel's signature for a private or presence
// one, the user's slot for its user channel, the hub, the presence members
// (with member_added to the others when the user is new there), then
// pusher_internal:subscription_succeeded.
func (sess *pusherSession) subscribe(ctx context.Context, msg pusher.ClientMessage) {
	s, c, ch := sess.srv, sess.c, msg.Channel
	if sess.subscribed(ch) {
		sess.send(pusher.AppendSubscriptionSucceeded(nil, ch)) // idempotent, as Pusher answers a repeat
		return
	}
	kind := pusher.KindOf(ch)
	if kind.NeedsAuth() {
		if err := pusher.VerifyChannelAuth(*s.opts.PusherApp, c.id, ch, msg.Auth, msg.ChannelData); err != nil {
			s.audit.Record("denied", slog.String("code", "channel_auth_invalid"), slog.String("transport", "pusher"),
				slog.String("connection_id", c.id), slog.String("channel", ch), slog.String("remote_addr", c.remote))
			sess.refuseSubscription(ch, pusher.CodeUnauthorized, http.StatusUnauthorized, "the channel's auth signature is not valid")
			return
		}
	}
	var member pusher.Member
	if kind == pusher.Presence {
		var err error
		if member, err = pusher.ParseChannelData(msg.ChannelData, 0); err != nil {
			// Refused as a subscription, so Echo's .error() hears of it:
			// a bare pusher:error leaves the channel pending for good.
			sess.refuseSubscription(ch, pusher.NoCode, http.StatusBadRequest, protocolMessage(err))
			return
		}
	}
	if userID, ok := sess.userOf(ch); ok && !sess.adoptUser(userID, ch) {
		return
	}
	if _, err := s.streams.hub.Subscribe(c.id, []string{ch}); err != nil {
		sess.dropUser(ch)
		sess.refuseSubscription(ch, pusher.NoCode, http.StatusBadRequest, statusOf(err).Message)
		return
	}
	var members []presence.Member
	if kind == pusher.Presence {
		var added bool
		var err error
		members, added, err = s.presence.Join(ctx, ch, c.id, presence.Member{UserID: member.UserID, Info: member.Info})
		if err != nil {
			_, _ = s.streams.hub.Unsubscribe(c.id, []string{ch})
			// A join that failed may have taken effect (the answer, not
			// the command, lost): undo it, or the user stays a member,
			// unannounced, while this instance lives.
			sess.leavePresence(ctx, ch)
			sess.presenceFailed(ch, err)
			return
		}
		if added {
			s.notifyChannel(ctx, ch, pusher.AppendMemberAdded(nil, ch, member), c.id)
		}
	}
	sess.mu.Lock()
	sess.channels[ch] = pusherChannel{member: member}
	sess.mu.Unlock()
	s.audit.Record("subscribe", slog.String("connection_id", c.id), slog.String("user_id", sess.user()),
		slog.Any("channels", []string{ch}), slog.String("via", "pusher"), slog.String("remote_addr", c.remote))
	if kind == pusher.Presence {
		sess.send(pusher.AppendPresenceSubscriptionSucceeded(nil, ch, pusherMembers(members)))
		return
	}
	sess.send(pusher.AppendSubscriptionSucceeded(nil, ch))
}

// protocolMessage is what a *pusher.ProtocolError says to the client.
func protocolMessage(err error) string {
	var pe *pusher.ProtocolError
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

// unsubscribe leaves a channel: the hub, then its presence membership
// (member_removed to the others when the user has no other connection
// there).
func (sess *pusherSession) unsubscribe(ctx context.Context, ch string) {
	sess.mu.Lock()
	_, ok := sess.channels[ch]
	delete(sess.channels, ch)
	sess.mu.Unlock()
	if !ok {
		return
	}
	_, _ = sess.srv.streams.hub.Unsubscribe(sess.c.id, []string{ch})
	sess.dropUser(ch)
	if pusher.KindOf(ch) == pusher.Presence {
		sess.leavePresence(ctx, ch)
	}
	sess.srv.audit.Record("unsubscribe", slog.String("connection_id", sess.c.id), slog.String("user_id", sess.user()),
		slog.Any("channels", []string{ch}), slog.String("via", "pusher"), slog.String("remote_addr", sess.c.remote))
}

// leaveAll leaves every channel when the connection ends.
func (sess *pusherSession) leaveAll() {
	sess.mu.Lock()
	held := sess.channels
	sess.channels = make(map[string]pusherChannel)
	release := sess.releaseUser
	sess.releaseUser = nil
	sess.mu.Unlock()
	if release != nil {
		release()
	}
	ctx, cancel := context.WithTimeout(context.Background(), sess.srv.opts.WriteTimeout)
	defer cancel()
	for ch := range held {
		if pusher.KindOf(ch) == pusher.Presence {
			sess.leavePresence(ctx, ch)
		}
	}
}

// clientEvent relays a client-* event (Echo's whisper) to the channel's
// other subscribers, wherever they are: only on private and presence
// channels the connection holds, within a rate.
func (sess *pusherSession) clientEvent(ctx context.Context, msg pusher.ClientMessage) {
	ch := msg.Channel
	if !pusher.KindOf(ch).AcceptsClientEvents() {
		sess.send(pusher.AppendError(nil, pusher.NoCode, "client events are allowed on private and presence channels only"))
		return
	}
	sess.mu.Lock()
	held, ok := sess.channels[ch]
	if sess.clientEvents == nil {
		sess.clientEvents = rate.NewLimiter(rate.Limit(sess.srv.opts.PusherClientEventRate), max(1, int(sess.srv.opts.PusherClientEventRate)))
	}
	allowed := sess.clientEvents.Allow()
	sess.mu.Unlock()
	switch {
	case !ok:
		sess.send(pusher.AppendError(nil, pusher.NoCode, "subscribe to "+ch+" before sending events on it"))
	case !allowed:
		sess.send(pusher.AppendError(nil, pusher.CodeClientEventRateLimit, pusher.CodeClientEventRateLimit.Message()))
	default:
		sess.srv.notifyChannel(ctx, ch, pusher.AppendClientEvent(nil, msg.Event, ch, msg.Data, held.member.UserID), sess.c.id)
	}
}

// userOf says whether ch is a user's private channel
// (private-<LARAVEL_USER_CHANNEL_PREFIX><id>), and whose.
func (sess *pusherSession) userOf(ch string) (string, bool) {
	id, ok := strings.CutPrefix(ch, sess.srv.userChannelPrefix())
	return id, ok && idPattern.MatchString(id)
}

// adoptUser makes the connection userID's: as /sse and /ws admit a user
// (admitUser), it spends one of the user's connects and takes one of the
// user's connection slots, then receives the user's notifications. A
// connection belongs to one user. false: refused, and answered.
func (sess *pusherSession) adoptUser(userID, ch string) bool {
	s := sess.srv
	sess.mu.Lock()
	current := sess.userID
	sess.mu.Unlock()
	switch {
	case current == userID:
		return true
	case current != "":
		sess.refuseSubscription(ch, pusher.NoCode, http.StatusForbidden, "this connection already belongs to another user")
		return false
	}
	release, e := s.admitUser(userID)
	if e != nil {
		// A bound met (429), audited as denied by admitUser, as on /sse
		// and /ws.
		sess.refuseSubscription(ch, pusher.CodeOverCapacity, e.Status, e.Message)
		return false
	}
	if err := s.streams.hub.SetUser(sess.c.id, userID); err != nil {
		release()
		sess.refuseSubscription(ch, pusher.NoCode, http.StatusServiceUnavailable, "could not take the user's notifications; retry")
		return false
	}
	sess.mu.Lock()
	sess.userID, sess.userChannel = userID, ch
	sess.releaseUser = release
	sess.mu.Unlock()
	return true
}

// dropUser gives the user back when ch is its user channel.
func (sess *pusherSession) dropUser(ch string) {
	sess.mu.Lock()
	if sess.userChannel != ch || sess.userChannel == "" {
		sess.mu.Unlock()
		return
	}
	release := sess.releaseUser
	sess.userID, sess.userChannel, sess.releaseUser = "", "", nil
	sess.mu.Unlock()
	_ = sess.srv.streams.hub.SetUser(sess.c.id, "")
	if release != nil {
		release()
	}
}

func (sess *pusherSession) user() string {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.userID
}

// notifyChannel sends an encoded Pusher message to the Pusher connections
// of a channel on every instance, but except ("": none).
func (s *Server) notifyChannel(ctx context.Context, ch string, msg []byte, except string) {
	if err := s.bus.NotifyChannel(ctx, ch, protocolFrame(msg), except); err != nil {
		s.logger.Error("pusher: notify channel", slog.String("channel", ch), slog.Any("error", err))
	}
}
