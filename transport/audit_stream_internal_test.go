package transport

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/audit"
	"notification-service/internal/streamtest"
	"notification-service/store"
)

// The audit tailer: one reader of the trail for every audit stream, which
// reads only while someone watches, starts from the newest event, goes on
// through store errors, and never waits for a slow viewer.

// countingTrail is a MemoryTrail that counts its reads and fails them
// while fail is set.
type countingTrail struct {
	*audit.MemoryTrail
	mu    sync.Mutex
	reads int
	fail  error
}

// Latest holds mu for the whole read, so setFail waits for a read already
// under way: nothing added after setFail returns is read before it is unset.
func (c *countingTrail) Latest(ctx context.Context, after string, f audit.Filter, limit int) ([]audit.Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	if c.fail != nil {
		return nil, c.fail
	}
	return c.MemoryTrail.Latest(ctx, after, f, limit)
}

func (c *countingTrail) readCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func (c *countingTrail) setFail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = err
}

// syncLog is a log's output, safe across goroutines.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startTailer runs a tailer reading every 5 ms until the test ends.
func startTailer(t *testing.T, trail audit.TrailStore, logger *slog.Logger) *auditTailer {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tl := newAuditTailer(trail, logger)
	tl.every = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	go tl.run(ctx)
	t.Cleanup(func() {
		cancel()
		<-tl.done
	})
	return tl
}

// nextBatch waits for the viewer's next batch.
func nextBatch(t *testing.T, v *auditViewer) []auditEntry {
	t.Helper()
	select {
	case b := <-v.batches:
		return b
	case <-time.After(streamtest.WaitTimeout):
		t.Fatal("no batch")
	}
	return nil
}

// nextEvents skips ticks up to the next batch with events.
func nextEvents(t *testing.T, v *auditViewer) []string {
	t.Helper()
	for {
		if b := nextBatch(t, v); len(b) > 0 {
			var actions []string
			for _, en := range b {
				actions = append(actions, en.event.Action)
			}
			return actions
		}
	}
}

func addEvents(t *testing.T, trail audit.TrailStore, actions ...string) {
	t.Helper()
	var events []audit.Event
	for _, a := range actions {
		events = append(events, audit.Event{Action: a, Time: time.Now()})
	}
	if err := trail.Add(context.Background(), events); err != nil {
		t.Fatal(err)
	}
}

func waitReady(t *testing.T, ready <-chan struct{}) {
	t.Helper()
	select {
	case <-ready:
	case <-time.After(streamtest.WaitTimeout):
		t.Fatal("the tailer never got ready")
	}
}

func (t *auditTailer) idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready == nil
}

func TestAuditTailerReadsOnlyWhileWatched(t *testing.T) {
	is := is.New(t)
	trail := &countingTrail{MemoryTrail: audit.NewMemoryTrail(100)}
	addEvents(t, trail, "old1", "old2", "old3")
	tl := startTailer(t, trail, nil)

	// Nobody watches: many ticks' worth of time, no read. (A wait for
	// nothing to happen cannot be an event; it is short.)
	time.Sleep(20 * tl.every)
	is.Equal(trail.readCount(), 0)

	// A first viewer: the tailer finds the newest event, and sends only
	// what comes after it, oldest first; the store is not sent again.
	v, ready := tl.subscribe(nil)
	is.True(v != nil)
	waitReady(t, ready)
	is.True(trail.readCount() >= 1)   // the newest event's; a tick may have read again since
	is.Equal(len(nextBatch(t, v)), 0) // a tick: nothing new
	addEvents(t, trail, "new1", "new2")
	is.Equal(nextEvents(t, v), []string{"new1", "new2"})

	// A second viewer joins the running tailer: ready at once.
	v2, ready2 := tl.subscribe(nil)
	waitReady(t, ready2)
	addEvents(t, trail, "new3")
	is.Equal(nextEvents(t, v), []string{"new3"})
	is.Equal(nextEvents(t, v2), []string{"new3"})

	// Both leave: the tailer goes idle and reads no more.
	tl.unsubscribe(v)
	tl.unsubscribe(v2)
	streamtest.Eventually(t, "the tailer to go idle", tl.idle)
	reads := trail.readCount()
	time.Sleep(20 * tl.every)
	is.Equal(trail.readCount(), reads)

	// Back: from the newest again, not from where it stopped.
	addEvents(t, trail, "while-idle")
	v3, ready3 := tl.subscribe(nil)
	waitReady(t, ready3)
	addEvents(t, trail, "new4")
	is.Equal(nextEvents(t, v3), []string{"new4"})
}

func TestAuditTailerGoesOnWhenTheStoreFails(t *testing.T) {
	is := is.New(t)
	trail := &countingTrail{MemoryTrail: audit.NewMemoryTrail(100)}
	logs := &syncLog{}
	tl := startTailer(t, trail, slog.New(slog.NewJSONHandler(logs, nil)))
	v, ready := tl.subscribe(nil)
	waitReady(t, ready)

	trail.setFail(fmt.Errorf("audit: read trail: %w", store.ErrUnavailable))
	addEvents(t, trail, "during1", "during2") // in the store, unread for now
	for range 10 {                            // the viewer keeps getting ticks
		is.Equal(len(nextBatch(t, v)), 0)
	}
	is.Equal(strings.Count(logs.String(), "cannot read the trail"), 1) // once, not per read

	trail.setFail(nil)
	is.Equal(nextEvents(t, v), []string{"during1", "during2"}) // nothing lost
	streamtest.Eventually(t, "the recovery logged", func() bool {
		return strings.Contains(logs.String(), "reading the trail again")
	})
	is.Equal(strings.Count(logs.String(), "cannot read the trail"), 1)
}

// TestAuditTailerFirstReadFails: a tailer that could not find the newest
// event when it started hands out the whole store once it can read it; the
// viewers skip what they wrote (the handler's IDAfter).
func TestAuditTailerFirstReadFails(t *testing.T) {
	is := is.New(t)
	trail := &countingTrail{MemoryTrail: audit.NewMemoryTrail(100)}
	addEvents(t, trail, "old1", "old2")
	trail.setFail(store.ErrUnavailable)
	tl := startTailer(t, trail, nil)
	v, ready := tl.subscribe(nil)
	waitReady(t, ready) // ready anyway: the viewer's own read fails or not
	is.Equal(len(nextBatch(t, v)), 0)
	trail.setFail(nil)
	is.Equal(nextEvents(t, v), []string{"old1", "old2"})
}

// TestAuditTailerSlowViewer: a viewer that does not take its batches
// misses them, marked, while the others get every one.
func TestAuditTailerSlowViewer(t *testing.T) {
	is := is.New(t)
	tl := newAuditTailer(audit.NewMemoryTrail(10), slog.New(slog.DiscardHandler))
	slow, _ := tl.subscribe(nil)
	fast, _ := tl.subscribe(nil)
	batch := []auditEntry{{event: audit.Event{ID: "1-0", Action: "send"}}}
	for range auditViewerBuffer {
		tl.fanOut(nil) // ticks fill the buffer, no gap
	}
	is.True(!slow.missed.Load())
	for len(fast.batches) > 0 {
		<-fast.batches
	}
	for range 3 * auditViewerBuffer {
		tl.fanOut(batch) // returns at once, whoever does not read
		is.Equal(len(nextBatchNow(t, fast)), 1)
	}
	is.True(slow.missed.Load())
	is.True(!fast.missed.Load())
}

// nextBatchNow takes a batch that must be there already.
func nextBatchNow(t *testing.T, v *auditViewer) []auditEntry {
	t.Helper()
	select {
	case b := <-v.batches:
		return b
	default:
		t.Fatal("no batch waiting")
	}
	return nil
}

// TestAuditTailerStops: no viewer joins a tailer that stopped, or one whose
// server closes its streams.
func TestAuditTailerStops(t *testing.T) {
	is := is.New(t)
	tl := newAuditTailer(audit.NewMemoryTrail(10), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	go tl.run(ctx)
	cancel()
	<-tl.done
	v, _ := tl.subscribe(nil)
	is.True(v == nil)

	closing := newAuditTailer(audit.NewMemoryTrail(10), slog.New(slog.DiscardHandler))
	closing.closeAll()
	v, _ = closing.subscribe(nil)
	is.True(v == nil)
}
