package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"notification-service/broker"
)

// handleWS serves GET /ws: the seed's WebSocket, which also takes
// subscribe, unsubscribe and ping actions from the client.
//
// The handler returns once the catch-up is written: websocket.Accept has
// taken the connection out of net/http, and what stays is one goroutine
// reading the client's actions (coder/websocket needs a reader for control
// frames anyway) and small buffers; the shared writers (writers.go) write
// to it.
func (s *Server) handleWS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, release, e := s.admitStream(r, func() *apiError {
			// websocket.Accept answers these in plain text; the API
			// answers JSON.
			e := s.checkUpgrade(r)
			if e != nil && e.Status == http.StatusUpgradeRequired {
				w.Header().Set("Upgrade", "websocket")
				w.Header().Set("Sec-WebSocket-Version", "13")
			}
			return e
		})
		if e != nil {
			// A WebSocket client sees no status (onclose gives 1006): a
			// refused one retries with its own backoff.
			s.refuse(w, r, e)
			return
		}
		// http.Server.Shutdown does not wait for hijacked connections:
		// count this one until it has ended, so the owner can.
		if !s.streams.started() {
			release()
			writeError(w, shuttingDownError())
			return
		}
		c := s.streams.newConn(p, "ws", r.RemoteAddr)
		c.release = func() { release(); s.streams.ended() }
		c.registered = make(chan struct{})
		c.firstAction = make(chan struct{})
		hj := &smallBuffers{ResponseWriter: w, timeout: s.opts.WriteTimeout, aborted: &c.aborted}
		ws, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
			InsecureSkipVerify: slices.Contains(s.opts.AllowedOrigins, "*"),
			OriginPatterns:     s.opts.AllowedOrigins,
			// Compression with context takeover costs about 1.2 MB per
			// connection; notifications are small.
			CompressionMode: websocket.CompressionDisabled,
			// The heartbeat ticker waits for pongs (conn.heartbeat), so no
			// goroutine waits for each.
			OnPongReceived: func(context.Context, []byte) { c.pong() },
			// The connection's writer answers pings, so that it is the one
			// writer while the stream lives: coder/websocket writes only
			// to end the connection (a close frame).
			OnPingReceived: func(_ context.Context, payload []byte) bool {
				c.sendControl(appendWSFrame(nil, wsOpPong, payload))
				return false
			},
		})
		if err != nil {
			// Accept has already answered the client.
			c.release()
			s.logger.Info("websocket accept failed", slog.String("remote_addr", r.RemoteAddr), slog.Any("error", err))
			return
		}
		ws.SetReadLimit(s.opts.MaxFrameBytes)

		c.out = hj.sock
		c.w = &wsWriter{ws: ws, out: hj.sock}
		c.peerDone = make(chan struct{})
		go s.readActions(ws, c)
		s.streams.start(r.Context(), c, p)
	})
}

// smallBuffers hands websocket.Accept the hijacked connection with small
// buffers, instead of the 4 KiB read and 4 KiB write buffers net/http
// gives a hijacker, which coder/websocket would keep for the connection's
// whole life. Through them coder/websocket only reads the client's actions
// and writes the close frame; notifications, pings and pongs are framed by
// wsWriter and written straight to the socket by the connection's writer.
// The connection is a sock, so coder/websocket's writes get a deadline
// too.
type smallBuffers struct {
	http.ResponseWriter
	timeout time.Duration
	aborted *atomic.Bool
	sock    *sock // set by Hijack
}

// wsBufferSize holds the largest control frame (2 + 125 bytes), which
// coder/websocket then writes to the socket in one piece; client actions
// are small and rare.
const wsBufferSize = 128

func (h *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.sock = newSock(nc, h.timeout, h.aborted)
	// A client may send its first frame right behind its handshake (the
	// seed's subscribes in onopen): keep what net/http has read ahead.
	early, _ := brw.Reader.Peek(brw.Reader.Buffered())
	r := bufio.NewReaderSize(h.sock, max(wsBufferSize, len(early)))
	if len(early) > 0 {
		r.Reset(io.MultiReader(bytes.NewReader(bytes.Clone(early)), h.sock))
		_, _ = r.Peek(len(early))
	}
	return h.sock, bufio.NewReadWriter(r, bufio.NewWriterSize(h.sock, wsBufferSize)), nil
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
func (s *Server) readActions(ws *websocket.Conn, c *conn) {
	defer close(c.peerDone)
	// Closed once the stream is registered, or has ended without.
	<-c.registered
	for {
		// Without a context: one with a Done channel costs coder/websocket
		// a context.AfterFunc per read, held by every idle connection. The
		// read ends when the connection closes (wsWriter.close).
		typ, data, err := ws.Read(context.Background())
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				c.kick(reasonFrameTooLarge)
			} else {
				c.kick(reasonClientClosed)
			}
			return
		}
		// An action's calls on the bus (Redis in Redis mode) are bounded
		// like a write, not by the connection's life.
		aside(func() {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
			defer cancel()
			if reply := s.act(ctx, c, typ, data); reply != nil {
				c.Deliver(reply)
			}
		})
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
		change := s.subscribing()
		if a.Action == "unsubscribe" {
			change = s.unsubscribing()
		}
		if _, err := s.changeChannels(ctx, change, broker.ChannelChange{ConnID: c.id, Channels: a.Channels}, slog.String("via", "ws"), slog.String("remote_addr", c.remote)); err != nil {
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

// wsWriter sends frames as WebSocket text messages. It frames them itself,
// so a batch goes out in one write: ws.Write sends one message per call, a
// system call each, which is most of what a delivery costs.
type wsWriter struct {
	ws  *websocket.Conn
	out *sock
}

func (*wsWriter) appendFrame(b []byte, f *broker.Frame) []byte { return appendTextMessage(b, f) }

func appendTextMessage(b []byte, f *broker.Frame) []byte {
	return appendWSFrame(b, wsOpText, f.JSON)
}

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	wsOpText = 0x1
	wsOpPing = 0x9
	wsOpPong = 0xA
)

// appendWSFrame appends one frame as a server sends it: final (never
// fragmented) and unmasked (RFC 6455, section 5.2).
func appendWSFrame(b []byte, opcode byte, payload []byte) []byte {
	const fin = 0x80
	b = append(b, fin|opcode)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// appendHeartbeat appends a ping. The pong is awaited by the heartbeat
// ticker (conn.heartbeat, conn.checkPong), which closes a peer that does
// not answer within PongTimeout, so nothing waits for it.
func (*wsWriter) appendHeartbeat(b []byte) []byte { return appendWSFrame(b, wsOpPing, nil) }

func (*wsWriter) awaitsPong() bool { return true }

// end sends the close frame the reason's ending names (with an error frame
// first where it asks for one), if any.
func (ww *wsWriter) end(r reason) {
	e := endingOf(r)
	if e.wsClose == 0 {
		return
	}
	if e.wsErrorFrame {
		// The frame says why in the API's terms; the close code says it
		// to clients that only look at onclose.
		_, _ = ww.out.Write(appendTextMessage(nil, errorFrame(string(r), e.text(r))))
	}
	_ = ww.ws.Close(e.wsClose, string(r))
}

func (ww *wsWriter) close() {
	_ = ww.ws.CloseNow()
}
