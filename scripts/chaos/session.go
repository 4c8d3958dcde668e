package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"notification-service/scripts/internal/streamread"
)

// handshakeTimeout bounds a connect up to the ready event.
const handshakeTimeout = 10 * time.Second

// keepOpen is one client's life, like a careful browser client: connect,
// read until the stream ends, wait a backoff with full jitter, reconnect
// with the last cursor. Attempt k after a drop goes to instance
// home+k: a failed attempt moves on to the next instance.
func (f *fleet) keepOpen(ctx context.Context, c *client, rng *rand.Rand, delay time.Duration) {
	if sleep(ctx, delay) != nil {
		return
	}
	attempt := 0
	for {
		opened, retryAfter := f.session(ctx, c, (c.spec.home+attempt)%instanceCount)
		if ctx.Err() != nil {
			return
		}
		if opened {
			attempt = 0
		} else {
			attempt++
		}
		wait := backoff(rng, attempt, f.cfg.backoffBase, f.cfg.backoffMax)
		if retryAfter > 0 {
			// The server said when to come back (Retry-After on a refused
			// WebSocket, retry: on a refused event stream), and a careful
			// client, like EventSource, does as it says.
			wait = retryAfter
		}
		if sleep(ctx, wait) != nil {
			return
		}
	}
}

// backoff is full jitter: uniform in [0, min(max, base*2^attempt)].
func backoff(rng *rand.Rand, attempt int, base, most time.Duration) time.Duration {
	ceiling := most
	if attempt < 30 && base<<attempt < most {
		ceiling = base << attempt
	}
	return time.Duration(rng.Int64N(int64(ceiling) + 1))
}

// session opens one stream on instance inst and reads it until it ends,
// then records why. It says whether the stream opened (ready arrived) and,
// for a refused connect, how long the server asked the client to wait.
func (f *fleet) session(ctx context.Context, c *client, inst int) (opened bool, retryAfter time.Duration) {
	open := f.readSSE
	if c.spec.transport == "ws" {
		open = f.readWS
	}
	opened, err := open(ctx, c, inst)
	c.live.Store(false)
	c.instance.Store(-1)
	silenced := c.endConn()
	if f.stopping.Load() {
		return opened, 0
	}
	var se statusError
	if errors.As(err, &se) {
		retryAfter = se.retryAfter
	}
	now := f.now()
	switch {
	case opened && silenced:
		f.ev.add(dropped, now)
		f.ev.add(silent, now)
		f.ended(c.spec.transport + " silent (dropped by the client)")
	case opened:
		f.ev.add(dropped, now)
		f.ended(c.spec.transport + " " + endReason(err))
	default:
		k, reason := connectFailure(err), ""
		if inst == proxied && k == connectOther && errors.Is(err, syscall.ECONNRESET) {
			// The proxy answers a connect to C while C is down with an
			// RST, its way of refusing.
			k, reason = connectRefused, "reset by the proxy (C down, or a cut)"
		} else {
			reason = failReason(k, err)
		}
		f.ev.add(k, now)
		f.failed(c.spec.transport + " " + reason)
	}
	return opened, retryAfter
}

// streamOpened marks c live on inst once its ready event arrived.
func (f *fleet) streamOpened(c *client, inst int, ready []byte) {
	c.onReady(ready)
	c.heard.Store(f.now())
	c.instance.Store(int32(inst))
	c.live.Store(true)
	now := f.now()
	f.ev.add(connected, now)
	c.mu.Lock()
	again := c.sessions > 1
	c.mu.Unlock()
	if again {
		f.ev.add(reconnected, now)
	}
}

// streamQuery is the query every stream of c asks with; the cursor goes
// in the Last-Event-ID header on SSE, as EventSource sends it.
func (f *fleet) streamQuery(c *client, cursor string) string {
	q := url.Values{"user_id": {f.layout.userName(c.spec.user)}}
	if len(c.spec.channels) > 0 {
		names := make([]string, len(c.spec.channels))
		for i, ch := range c.spec.channels {
			names[i] = f.layout.channelName(ch)
		}
		q.Set("channels", strings.Join(names, ","))
	}
	if cursor != "" {
		q.Set("last_event_id", cursor)
	}
	return q.Encode()
}

// statusError is a connect the server refused before the stream: an HTTP
// status, or (to an event-stream client) a 200 whose first event is an
// error naming the code, as refuseSSE answers so that EventSource retries.
type statusError struct {
	status     int
	body       string
	retryAfter time.Duration // 0: the server named no wait
}

// refusedStatus is the status behind a refusal's code, for an event
// stream that carried the code instead of the status.
var refusedStatus = map[string]int{
	"rate_limited": 429, "too_many_connections": 429, "store_unavailable": 503, "shutting_down": 503,
}

func (e statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// serverEnd is a stream the server ended with a reason.
type serverEnd struct{ reason string }

func (e serverEnd) Error() string { return e.reason }

var errNoReady = errors.New("the stream did not start with ready")

func connectFailure(err error) kind {
	var se statusError
	switch {
	case errors.As(err, &se) && se.status == 429:
		return connect429
	case errors.As(err, &se) && se.status == 503:
		return connect503
	case errors.Is(err, syscall.ECONNREFUSED):
		return connectRefused
	}
	return connectOther
}

// failReason names why a connect failed, for the report.
func failReason(k kind, err error) string {
	var se statusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("HTTP %d %s", se.status, truncate(se.body, 100))
	case k == connectRefused:
		return "connection refused"
	case errors.Is(err, errNoReady):
		return err.Error()
	}
	return endReason(err)
}

// endReason names why an open stream ended, for the report.
func endReason(err error) string {
	var se serverEnd
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return se.reason
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case err == nil:
		return "ended"
	}
	return "error: " + truncate(err.Error(), 80)
}

// reasonOf reads "reason" or "code" from a control event's JSON.
func reasonOf(frame []byte) string {
	for _, field := range []string{`"reason":"`, `"code":"`} {
		if v, ok := streamread.StringAfter(frame, []byte(field)); ok {
			return string(v)
		}
	}
	return "?"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func itoa(n int) string { return strconv.Itoa(n) }
