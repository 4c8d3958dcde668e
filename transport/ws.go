package transport

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"notification-service/broker"
)

// handleWS serves GET /ws: the seed's WebSocket, which also takes
// subscribe, unsubscribe and ping actions from the client.
func (s *Server) handleWS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := s.allowConnectFrom(r); e != nil {
			writeError(w, e)
			return
		}
		p, e := s.streamParams(r)
		if e != nil {
			s.refuse(w, r, e)
			return
		}
		// websocket.Accept answers these in plain text; the API answers
		// JSON.
		if e := s.checkUpgrade(r); e != nil {
			if e.Status == http.StatusUpgradeRequired {
				w.Header().Set("Upgrade", "websocket")
				w.Header().Set("Sec-WebSocket-Version", "13")
			}
			writeError(w, e)
			return
		}
		release, e := s.admitUser(p.userID)
		if e != nil {
			writeError(w, e)
			return
		}
		defer release()
		// http.Server.Shutdown does not wait for hijacked connections:
		// count this handler, reader included, so the owner can.
		if !s.streamStarted() {
			writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: "shutting_down", Message: "the server is shutting down; reconnect"})
			return
		}
		defer s.streamEnded()
		// A hijacked connection keeps the server's WriteTimeout deadline;
		// the writer sets its own per write.
		if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
			s.fail(w, r, err)
			return
		}
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			InsecureSkipVerify: slices.Contains(s.opts.AllowedOrigins, "*"),
			OriginPatterns:     s.opts.AllowedOrigins,
			// Compression with context takeover costs about 1.2 MB per
			// connection; notifications are small.
			CompressionMode: websocket.CompressionDisabled,
		})
		if err != nil {
			// Accept has already answered the client.
			s.log.Info("websocket accept failed", slog.String("remote_addr", r.RemoteAddr), slog.Any("error", err))
			return
		}
		ws.SetReadLimit(s.opts.MaxFrameBytes)

		// The handler's context ends the reader; the stream ends first.
		ctx, cancel := context.WithCancel(r.Context())
		c := newConn(broker.NewID(), p.userID, "ws", r.RemoteAddr, s.opts.QueueSize)
		c.claims = p.claims
		var reader sync.WaitGroup
		reader.Go(func() { s.readActions(ctx, ws, c) })

		s.stream(ctx, c, p, &wsWriter{ws: ws, pongTimeout: s.opts.PongTimeout, writeTimeout: s.opts.WriteTimeout})
		cancel()
		ws.CloseNow()
		reader.Wait()
	})
}

// checkUpgrade refuses, before the upgrade, what websocket.Accept would
// refuse: a request that is not a WebSocket handshake, or a browser page
// from an origin not in ALLOWED_ORIGINS.
func (s *Server) checkUpgrade(r *http.Request) *apiError {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") ||
		r.Header.Get("Sec-WebSocket-Key") == "" {
		return &apiError{Status: http.StatusUpgradeRequired, Code: "websocket_required", Message: "this endpoint speaks WebSocket; use /sse for plain HTTP"}
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		return &apiError{Status: http.StatusUpgradeRequired, Code: "websocket_version", Message: "only WebSocket version 13 is supported"}
	}
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(s.opts.AllowedOrigins, "*") || s.originAllowed(origin) {
		return nil
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return nil // same origin
	}
	return &apiError{Status: http.StatusForbidden, Code: "origin_not_allowed", Message: "this origin is not allowed to open a WebSocket here"}
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

type wsAction struct {
	Action   string   `json:"action"`
	Channels []string `json:"channels"`
}

// readActions reads client frames until the connection ends. A bad frame
// gets an error frame and the connection stays open.
func (s *Server) readActions(ctx context.Context, ws *websocket.Conn, c *conn) {
	select {
	case <-c.registered:
	case <-ctx.Done():
		return
	}
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				c.kick("frame_too_large")
			} else {
				c.kick(reasonClientClosed)
			}
			return
		}
		if reply := s.act(ctx, c, typ, data); reply != nil {
			c.Deliver(reply)
		}
		c.actionHandled()
	}
}

// act carries out one client frame and returns the frame to answer it with,
// if any (subscription changes answer through the user's event stream).
func (s *Server) act(ctx context.Context, c *conn, typ websocket.MessageType, data []byte) *broker.Frame {
	if typ != websocket.MessageText {
		return errorFrame("invalid_frame", "send actions as JSON text frames")
	}
	a, e := parseAction(data, s.opts.MaxChannels, s.opts.MaxJSONDepth)
	if e != nil {
		return errorFrame(e.Code, e.Message)
	}
	switch a.Action {
	case "subscribe", "unsubscribe":
		// Nothing is subscribed unless the token allows every channel
		// asked for.
		if a.Action == "subscribe" {
			if e := forbiddenChannel(c.claims, a.Channels); e != nil {
				return errorFrame(e.Code, e.Message)
			}
		}
		if _, err := s.changeChannels(ctx, c.id, a.Channels, a.Action == "subscribe", "ws", c.remote); err != nil {
			e := statusOf(err)
			return errorFrame(e.Code, e.Message)
		}
		return nil
	default: // "ping"
		return broker.EventFrame("pong", nil)
	}
}

// parseAction reads one client frame. It returns a known action, with at
// least one valid channel (de-duplicated, at most maxChannels) for
// subscribe and unsubscribe and none for ping, or the error to answer. It
// has no side effects, so it can be fuzzed on its own.
func parseAction(data []byte, maxChannels, maxDepth int) (wsAction, *apiError) {
	var a wsAction
	if e := decodeJSON(data, &a, maxDepth); e != nil {
		return wsAction{}, e
	}
	switch a.Action {
	case "subscribe", "unsubscribe":
		channels, e := checkChannels("channels", a.Channels, maxChannels)
		if e != nil {
			return wsAction{}, e
		}
		if len(channels) == 0 {
			return wsAction{}, invalid("channels", "give at least one channel")
		}
		return wsAction{Action: a.Action, Channels: channels}, nil
	case "ping":
		return wsAction{Action: a.Action}, nil
	default:
		return wsAction{}, badRequest("unknown_action", "action", `action must be "subscribe", "unsubscribe" or "ping"`)
	}
}

func errorFrame(code, message string) *broker.Frame {
	return broker.EventFrame("error", map[string]any{"code": code, "message": message})
}

type wsWriter struct {
	ws           *websocket.Conn
	pongTimeout  time.Duration
	writeTimeout time.Duration
}

func (ww *wsWriter) write(ctx context.Context, frames []*broker.Frame) error {
	ctx, cancel := context.WithTimeout(ctx, ww.writeTimeout)
	defer cancel()
	for _, f := range frames {
		if err := ww.ws.Write(ctx, websocket.MessageText, f.JSON); err != nil {
			return err
		}
	}
	return nil
}

// heartbeat pings and waits for the pong; a peer that does not answer in
// time is dropped (a Ping that times out leaves the socket open, so the
// caller's CloseNow is what closes it).
func (ww *wsWriter) heartbeat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ww.pongTimeout)
	defer cancel()
	return ww.ws.Ping(ctx)
}

func (ww *wsWriter) end(reason string) {
	switch reason {
	case reasonShutdown:
		_ = ww.ws.Close(websocket.StatusServiceRestart, reason)
	case reasonSlowConsumer, reasonResync:
		_ = ww.ws.Close(websocket.StatusTryAgainLater, reason)
	case "frame_too_large":
		_ = ww.ws.Close(websocket.StatusMessageTooBig, reason)
	case reasonReplayFailed:
		_ = ww.ws.Close(websocket.StatusInternalError, reason)
	case reasonTokenExpired:
		// The frame says why in the API's terms; the close code says it
		// to clients that only look at onclose.
		ctx, cancel := context.WithTimeout(context.Background(), ww.writeTimeout)
		defer cancel()
		_ = ww.ws.Write(ctx, websocket.MessageText, errorFrame(reason, endMessage(reason)).JSON)
		_ = ww.ws.Close(statusTokenExpired, reason)
	}
}

// statusTokenExpired closes a WebSocket whose token expired: in the range
// RFC 6455 leaves to applications, 4000 plus HTTP's 401, so a client tells
// it from a network drop and fetches a new token before reconnecting.
const statusTokenExpired websocket.StatusCode = 4001
