package analytics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"notification-service/broker"
)

// Recorder is one instance's way into the store: the publish path, the
// bus's delivery callback and the mark-read path report to it, each report
// costing a lock and an append (nothing per connection, no I/O), and Run
// hands what it gathered to the Store once per FlushEvery, off every
// request path. In Redis mode that is one script per flush (per
// scriptItems reports): per notification, one bit set by the instance that
// published it and one by each instance that delivered it.
//
// What waits is bounded (RecorderOptions.MaxPending): while the store
// refuses, reports wait and are tried again at the next flush; past the
// bound new ones are dropped, counted and logged. An instance killed
// without a graceful stop loses what it gathered since its last flush.
type Recorder struct {
	store  Store
	every  time.Duration
	max    int
	logger *slog.Logger

	mu      sync.Mutex
	batch   Batch
	size    int
	dropped int64
	failing bool
}

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	// FlushEvery spaces the flushes; 0 means a second.
	FlushEvery time.Duration
	// MaxPending bounds the reports waiting for a flush; 0 means 100,000.
	MaxPending int
	Logger     *slog.Logger
}

// NewRecorder returns a Recorder flushing to store. Call Run.
func NewRecorder(store Store, opts RecorderOptions) *Recorder {
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = time.Second
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 100_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{store: store, every: opts.FlushEvery, max: opts.MaxPending, logger: opts.Logger}
}

func markOf(n broker.Notification) Mark {
	return Mark{Seq: n.Seq, Day: DayOf(n.Timestamp), Type: n.Type}
}

// Published reports notifications the publish path published (with their
// Seq and Timestamp set): each copy is sent.
func (r *Recorder) Published(ns []broker.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range ns {
		if !r.room() {
			return
		}
		r.batch.Sent = append(r.batch.Sent, markOf(n))
	}
}

// Delivered is the bus's delivery callback (broker.DeliveryFunc): a copy
// that reached a live connection here is delivered.
func (r *Recorder) Delivered(n broker.Notification, reached int) {
	if reached == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.room() {
		r.batch.Delivered = append(r.batch.Delivered, markOf(n))
	}
}

// Read reports a notification of type typ and timestamp sentAt marked read
// at readAt; report it only when the mark changed the entry (once).
func (r *Recorder) Read(typ string, sentAt, readAt time.Time) {
	k, b := Key{DayOf(sentAt), typ}, bucketOf(readAt.Sub(sentAt))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.batch.Reads == nil {
		r.batch.Reads = make(map[Key]Histogram)
	}
	h := r.batch.Reads[k]
	if _, ok := h[b]; !ok {
		if !r.room() {
			return
		}
		if h == nil {
			h = Histogram{}
			r.batch.Reads[k] = h
		}
	}
	h[b]++
}

// room says whether one more report fits, and takes its place; under r.mu.
func (r *Recorder) room() bool {
	if r.size >= r.max {
		r.dropped++
		return false
	}
	r.size++
	return true
}

// Run flushes every FlushEvery until ctx ends, then once more.
func (r *Recorder) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = r.Flush(final)
			return nil
		case <-t.C:
			_ = r.Flush(ctx)
		}
	}
}

// Flush hands every waiting report to the store. On failure they wait for
// the next flush (within MaxPending).
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	b, size, dropped := r.batch, r.size, r.dropped
	r.batch, r.size, r.dropped = Batch{}, 0, 0
	r.mu.Unlock()
	if dropped > 0 {
		r.logger.Warn("analytics: reports dropped: too many waiting for the store", slog.Int64("dropped", dropped), slog.Int("max_pending", r.max))
	}
	if size == 0 {
		return nil
	}
	err := r.store.Apply(ctx, b)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if !r.failing {
			r.logger.Warn("analytics: store refused a flush; reports wait for the next one", slog.Int("reports", size), slog.Any("error", err))
		}
		r.failing = true
		r.putBack(b, size)
		return err
	}
	if r.failing {
		r.logger.Info("analytics: store accepts flushes again")
	}
	r.failing = false
	return nil
}

// putBack returns a batch the store refused to the waiting reports, as much
// of it as fits. Marks count once however often they are applied, so a
// batch the store took in part is safe to apply again (its reads may count
// twice then).
func (r *Recorder) putBack(b Batch, size int) {
	if r.size+size > r.max {
		r.dropped += int64(size)
		return
	}
	r.size += size
	r.batch.Sent = append(b.Sent, r.batch.Sent...)
	r.batch.Delivered = append(b.Delivered, r.batch.Delivered...)
	if r.batch.Reads == nil {
		r.batch.Reads = b.Reads
		return
	}
	for k, h := range b.Reads {
		if mine := r.batch.Reads[k]; mine != nil {
			for bucket, n := range h {
				if _, ok := mine[bucket]; ok {
					r.size-- // counted twice above
				}
				mine[bucket] += n
			}
			continue
		}
		r.batch.Reads[k] = h
	}
}
