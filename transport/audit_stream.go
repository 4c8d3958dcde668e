package transport

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"notification-service/audit"
	"notification-service/broker"
)

// The live audit trail as a stream: GET /api/v1/dashboard/audit/stream.
//
// One auditTailer per instance reads the trail's store, and only while at
// least one viewer is subscribed: one read every auditTailEvery (the
// trail's own flush period) for the events newer than the last it saw,
// however many dashboards are open and whatever the traffic (the trail is a
// bounded sample). Each batch is encoded once and handed to every viewer
// over a small buffered channel; each viewer's handler, the request's own
// goroutine, filters it and writes it. No viewer has a goroutine or timer
// of its own: the tailer's batches (empty ones included) are also the
// viewers' clock for their keepalives.

// auditTailEvery spaces the tailer's reads: the trail's flush period, so
// a read rarely finds nothing new while events come.
const auditTailEvery = 500 * time.Millisecond

// auditTailTimeout bounds one read of the store (Redis away).
const auditTailTimeout = 2 * time.Second

// auditViewerBuffer is how many batches wait for a viewer: eight seconds
// of them. A viewer further behind misses batches (see fanOut).
const auditViewerBuffer = 16

// auditKeepalive spaces the keepalive comments when the server has no
// heartbeat interval configured.
const auditKeepalive = 15 * time.Second

// auditEntry is an event and its SSE frame, encoded once for every viewer.
type auditEntry struct {
	event audit.Event
	frame []byte
}

// auditEntries encodes events in the order given.
func auditEntries(events []audit.Event) []auditEntry {
	out := make([]auditEntry, 0, len(events))
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			continue // an event's fields come from audit records: never
		}
		// Framed as /sse frames its events: the event's JSON, as the poll
		// returns it, with its id.
		b := appendEvent(nil, &broker.Frame{Event: "audit", Cursor: e.ID, JSON: data})
		out = append(out, auditEntry{event: e, frame: b})
	}
	return out
}

// auditViewer is one open audit stream, as the tailer sees it.
type auditViewer struct {
	// batches carries the tailer's batches, oldest event first; an empty
	// batch is a tick (nothing new, or the store unreadable this time).
	batches chan []auditEntry
	// missed is set when a batch with events could not be handed over:
	// the viewer has a gap and its stream ends (handleDashboardAuditStream).
	missed atomic.Bool
	// rc's write deadline is moved to now by abort while a write is in
	// progress (one blocked on a peer that reads nothing), as
	// responseSink does for /sse; mu orders that with the writes.
	rc      *http.ResponseController
	mu      sync.Mutex
	writing bool
	aborted bool
	failed  bool
}

// abort makes a write in progress return at once, and every later one
// fail. A viewer not writing keeps its deadline: its handler sees the
// shutdown and ends the response itself, cleanly.
func (v *auditViewer) abort() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.aborted = true
	if v.writing {
		_ = v.rc.SetWriteDeadline(time.Now())
	}
}

// write sends b at once, under a deadline of its own; false when it
// could not.
func (v *auditViewer) write(w http.ResponseWriter, b []byte, timeout time.Duration) bool {
	v.mu.Lock()
	if v.aborted || v.failed {
		v.mu.Unlock()
		return false
	}
	v.writing = true
	err := v.rc.SetWriteDeadline(time.Now().Add(timeout))
	v.mu.Unlock()
	if err == nil {
		_, err = w.Write(b)
	}
	if err == nil {
		err = v.rc.Flush()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.writing = false
	v.failed = err != nil
	return !v.failed
}

// end gives the end of the response a deadline of its own, unless a write
// failed (the peer is stuck or gone: net/http's last write would fail or
// wait too). abort, which moves only the deadline of a write in progress,
// no longer touches it.
func (v *auditViewer) end(timeout time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.failed {
		_ = v.rc.SetWriteDeadline(time.Now().Add(timeout))
	}
}

// auditTailer reads the store for every audit stream of this server. Its
// run is owned by Server.Run.
type auditTailer struct {
	store  audit.TrailStore
	logger *slog.Logger
	every  time.Duration

	// wake tells an idle run that a first viewer came.
	wake chan struct{}
	// done is closed when run returns: the streams end.
	done chan struct{}

	mu      sync.Mutex
	viewers map[*auditViewer]struct{}
	// ready is nil while nobody watches; a first viewer makes it, and run
	// closes it once it knows where it starts from (the newest event in
	// the store), so a viewer reads its backlog after that point and
	// nothing falls between the two.
	ready   chan struct{}
	stopped bool
	closing bool

	// failing and failed pace the log while the store is away (run only).
	failing bool
	failed  int
}

func newAuditTailer(store audit.TrailStore, logger *slog.Logger) *auditTailer {
	return &auditTailer{store: store, logger: logger, every: auditTailEvery,
		wake: make(chan struct{}, 1), done: make(chan struct{}), viewers: make(map[*auditViewer]struct{})}
}

// subscribe adds a viewer writing through rc; ready is closed once the
// tailer follows the store from a point no later than now. v is nil when
// the tailer has stopped or the server is closing its streams.
func (t *auditTailer) subscribe(rc *http.ResponseController) (v *auditViewer, ready <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.closing {
		return nil, nil
	}
	v = &auditViewer{batches: make(chan []auditEntry, auditViewerBuffer), rc: rc}
	t.viewers[v] = struct{}{}
	if t.ready == nil {
		t.ready = make(chan struct{})
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	return v, t.ready
}

func (t *auditTailer) unsubscribe(v *auditViewer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.viewers, v)
}

// closeAll releases every viewer's write in progress; the handlers see
// the server's shutdown themselves and end their streams.
func (t *auditTailer) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closing = true
	for v := range t.viewers {
		v.abort()
	}
}

// run follows the store while anyone watches, and waits without reading
// while nobody does, until ctx ends.
func (t *auditTailer) run(ctx context.Context) {
	defer func() {
		t.mu.Lock()
		t.stopped = true
		close(t.done)
		t.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
		if !t.follow(ctx) {
			return
		}
	}
}

// follow reads what is new every t.every and hands it out, from the newest
// event present when it starts (the viewers read what came before
// themselves), until the last viewer leaves (true) or ctx ends (false).
func (t *auditTailer) follow(ctx context.Context) bool {
	// Not found (the store unreadable): the first read that succeeds
	// brings the whole store, which the viewers' handlers skip as written
	// already; it costs one read of the store's capacity, once.
	last := ""
	if newest, err := t.read(ctx, "", 1); err == nil && len(newest) > 0 {
		last = newest[0].ID
	}
	t.mu.Lock()
	if t.ready != nil {
		close(t.ready)
	}
	t.mu.Unlock()

	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		t.mu.Lock()
		if len(t.viewers) == 0 {
			t.ready = nil // the next viewer wakes run again
			t.mu.Unlock()
			return true
		}
		t.mu.Unlock()
		var batch []auditEntry
		// At most what the store keeps (it bounds the read by its own
		// capacity too): a batch that large, in half a second, means the
		// store has forgotten some already.
		if events, err := t.read(ctx, last, audit.DefaultTrailCapacity); err == nil && len(events) > 0 {
			last = events[0].ID
			slices.Reverse(events) // newest first: sent oldest first
			batch = auditEntries(events)
		}
		t.fanOut(batch)
	}
}

// read is one read of the store: at most limit of the events after after,
// newest first. Errors are logged when the store starts and stops failing
// (store.ErrUnavailable while Redis is away), never per read: the viewers
// stay connected and the reads go on.
func (t *auditTailer) read(ctx context.Context, after string, limit int) ([]audit.Event, error) {
	rctx, cancel := context.WithTimeout(ctx, auditTailTimeout)
	defer cancel()
	events, err := t.store.Latest(rctx, after, audit.Filter{}, limit)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, err // stopping, not failing
	case err != nil:
		if !t.failing {
			t.logger.Warn("audit stream: cannot read the trail; open dashboards get nothing new until it can", slog.Any("error", err))
		}
		t.failing = true
		t.failed++
	case t.failing:
		t.logger.Info("audit stream: reading the trail again", slog.Int("failed_reads", t.failed))
		t.failing, t.failed = false, 0
	}
	return events, err
}

// fanOut hands batch to every viewer without waiting for any: a viewer
// whose buffer is full (its client reads too slowly) misses the batch
// rather than hold up the tailer and everyone else, and is marked so (its
// stream ends; the client resumes with after= and reads the gap from the
// store). An empty batch is a tick; missing one is no gap.
func (t *auditTailer) fanOut(batch []auditEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for v := range t.viewers {
		select {
		case v.batches <- batch:
		default:
			if len(batch) > 0 {
				v.missed.Store(true)
			}
		}
	}
}

// handleDashboardAuditStream serves GET /api/v1/dashboard/audit/stream:
// the poll's query (auditQuery) answered as text/event-stream. First the
// backlog, the latest limit matching events newer than after, oldest
// first; then every new matching event as the tailer finds it, each as
// "event: audit\nid: <event id>\ndata: <the event's JSON>\n\n", never one
// twice (ids only grow: what is not after the last one written is
// skipped). ": keepalive" comments keep a quiet stream open. Refusals come
// before the stream starts, as JSON errors.
//
// The stream ends, and the client reconnects with after=<the last id it
// got>, when the server shuts down (closeAll: not held up by the stream),
// and when the viewer fell behind and missed a batch (": gap" says so):
// the backlog of the reconnect fills the gap from the store.
func (s *Server) handleDashboardAuditStream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.monitoring.Trail == nil || s.auditTail == nil {
			writeError(w, notEnabled("the audit trail"))
			return
		}
		after, f, limit, e := auditQuery(r)
		if e != nil {
			writeError(w, e)
			return
		}
		ctx := r.Context()
		t := s.auditTail
		rc := http.NewResponseController(w)
		// Subscribed before the backlog is read, so nothing falls between
		// them; what both bring is written once.
		v, ready := t.subscribe(rc)
		if v == nil {
			writeError(w, shuttingDownError())
			return
		}
		defer t.unsubscribe(v)
		select {
		case <-ready:
		case <-ctx.Done():
			return
		case <-s.streams.shuttingDown:
			writeError(w, shuttingDownError())
			return
		case <-t.done:
			writeError(w, shuttingDownError())
			return
		}
		backlog, err := s.monitoring.Trail.Latest(ctx, after, f, limit)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// The server's WriteTimeout would cut the stream; each write sets
		// its own deadline instead.
		if err := rc.SetWriteDeadline(time.Time{}); err != nil {
			s.fail(w, r, err)
			return
		}
		h := w.Header()
		setEventStreamHeaders(h)
		if r.ProtoMajor == 1 {
			// The write deadlines set here are the connection's: it is
			// not reused after the stream. (Under HTTP/2 they are the
			// stream's, and Connection: close would end the connection.)
			h.Set("Connection", "close")
		}
		w.WriteHeader(http.StatusOK)
		// However the stream ends, the end of the response goes out under
		// a deadline.
		defer v.end(s.opts.WriteTimeout)

		keepalive := s.opts.HeartbeatInterval
		if keepalive <= 0 {
			keepalive = auditKeepalive
		}
		last := after
		lastWrite := time.Now()
		var buf []byte
		write := func(b []byte) bool {
			lastWrite = time.Now()
			return v.write(w, b, s.opts.WriteTimeout)
		}
		// send writes the entries that match and are new: the backlog and
		// the first batches may overlap.
		send := func(entries []auditEntry) bool {
			buf = buf[:0]
			for _, en := range entries {
				if f.Matches(en.event) && audit.IDAfter(en.event.ID, last) {
					buf = append(buf, en.frame...)
					last = en.event.ID
				}
			}
			if len(buf) == 0 {
				return true
			}
			return write(buf)
		}
		slices.Reverse(backlog)
		if !send(auditEntries(backlog)) || !write(nil) { // write(nil): the head, now
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.streams.shuttingDown:
				return // the client comes back, to this instance's successor
			case <-t.done:
				return
			case batch := <-v.batches:
				if v.missed.Load() {
					// A batch went by while this viewer was behind: end
					// rather than show a hole; the reconnect's backlog
					// (after=<last id>) reads it from the store.
					_ = write([]byte(": gap: this stream fell behind and missed events; reconnect with after=" + last + "\n\n"))
					return
				}
				if !send(batch) {
					return
				}
				if time.Since(lastWrite) >= keepalive && !write([]byte(": keepalive\n\n")) {
					return
				}
			}
		}
	})
}
