package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"notification-service/scripts/internal/streamread"
)

// stream is one connection of the run and what it received.
type stream struct {
	index     int
	user      string
	transport string // "sse", "ws" or "pusher"
	got       tally

	// Written by the stream's goroutine; read by the run only after the
	// WaitGroup that goroutine belongs to.
	closer  io.Closer
	openErr error
	ended   error // why the stream ended before the run closed it
}

// receiver turns notification frames into receipts. Every message of a run
// carries "lg-<run>-<n>" as its title; the receiver finds n in the frame
// with one byte search (no JSON decoding) and notes the time in the
// stream's tally.
type receiver struct {
	start  time.Time
	marker []byte
	// fresh counts first receipts over all streams: the run waits for it
	// to reach what it expects.
	fresh atomic.Int64
}

func newReceiver(runID string, start time.Time) *receiver {
	return &receiver{start: start, marker: fmt.Appendf(nil, `"title":"lg-%s-`, runID)}
}

// title is the title of message n of run runID.
func title(runID string, n int) string { return fmt.Sprintf("lg-%s-%d", runID, n) }

// now is the time since the run started, in nanoseconds (monotonic).
func (r *receiver) now() int64 { return int64(time.Since(r.start)) }

func (r *receiver) onNotification(s *stream, frame []byte) {
	n, ok := streamread.NumberAfter(frame, r.marker)
	if !ok {
		return // not this run's: another client's traffic on a shared server
	}
	if s.got.record(n, r.now()) {
		r.fresh.Add(1)
	}
}

// fleet is every stream of a run and the goroutines reading them, one per
// stream.
type fleet struct {
	streams   []*stream
	readers   sync.WaitGroup
	closing   atomic.Bool
	closeOnce sync.Once
	// dropped counts streams the server ended while the run still needed
	// them.
	dropped atomic.Int64
}

// opener connects one stream and waits for its ready event, then returns
// the loop that reads the stream until it ends.
type opener func(ctx context.Context, tg *target, s *stream, onNotification func(*stream, []byte)) (func() error, error)

// openFleet opens n streams, at most concurrency at a time, each waiting
// for its ready event; progress goes to logf every few seconds. It returns
// once every stream is open or has failed to open.
func openFleet(ctx context.Context, tg *target, rec *receiver, n int, transports []string, messages, concurrency int,
	runID string, logf func(string, ...any)) *fleet {
	f := &fleet{streams: make([]*stream, n)}
	var opening sync.WaitGroup
	var opened, failed atomic.Int64
	stopProgress := progress(2*time.Second, func() {
		logf("opening: %d open, %d failed of %d", opened.Load(), failed.Load(), n)
	})
	defer stopProgress()

	slots := make(chan struct{}, max(concurrency, 1))
	for i := range n {
		s := &stream{index: i, user: fmt.Sprintf("lg-%s-u%d", runID, i), transport: transports[i%len(transports)], got: newTally(messages)}
		f.streams[i] = s
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			s.openErr = ctx.Err()
			failed.Add(1)
			continue
		}
		open := openers[s.transport]
		opening.Add(1)
		f.readers.Go(func() {
			octx, cancel := context.WithTimeout(ctx, 15*time.Second)
			read, err := open(octx, tg, s, rec.onNotification)
			cancel()
			<-slots
			s.openErr = err
			if err != nil {
				failed.Add(1)
			} else {
				opened.Add(1)
			}
			opening.Done()
			if err != nil {
				return
			}
			if err := read(); !f.closing.Load() {
				s.ended = err
				f.dropped.Add(1)
			}
		})
	}
	opening.Wait()
	return f
}

// openers are the transports a stream can use.
var openers = map[string]opener{"sse": openSSE, "ws": openWS, "pusher": openPusher}

// transportList reads -transport: one transport, "mix" (SSE and WebSocket
// taking turns, as the mixed row has always been), or a comma-separated
// list whose transports take turns, stream i using the (i mod n)th.
func transportList(flag string) ([]string, error) {
	if flag == "mix" {
		return []string{"sse", "ws"}, nil
	}
	list := strings.Split(flag, ",")
	for _, t := range list {
		if _, ok := openers[t]; !ok {
			return nil, fmt.Errorf("%q: want sse, ws, pusher, mix, or a comma-separated list of sse, ws and pusher", t)
		}
	}
	return list, nil
}

// openErrors counts the streams that failed to open and returns a few of
// their errors.
func (f *fleet) openErrors() (int, []string) {
	count, samples := 0, []string(nil)
	for _, s := range f.streams {
		if s.openErr != nil {
			count++
			if len(samples) < 3 {
				samples = append(samples, fmt.Sprintf("stream %d (%s): %v", s.index, s.transport, s.openErr))
			}
		}
	}
	return count, samples
}

// close closes every stream and waits for every reader to end.
func (f *fleet) close() {
	f.closeOnce.Do(func() {
		f.closing.Store(true)
		for _, s := range f.streams {
			if s.openErr == nil && s.closer != nil {
				_ = s.closer.Close()
			}
		}
		f.readers.Wait()
	})
}

// droppedErrors returns a few reasons streams ended early; call after
// close.
func (f *fleet) droppedErrors() []string {
	var samples []string
	for _, s := range f.streams {
		if s.ended != nil && len(samples) < 3 {
			samples = append(samples, fmt.Sprintf("stream %d (%s) ended: %v", s.index, s.transport, s.ended))
		}
	}
	return samples
}

// progress calls report every interval until the returned stop is called.
func progress(interval time.Duration, report func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				report()
			case <-done:
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
