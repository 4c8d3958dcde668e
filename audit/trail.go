package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Trail is the live trail's side on one instance: a Sink that counts every
// event by action and second, and keeps a sample of them, at most
// TrailOptions.PerSecond events of each action a second, whatever the
// traffic (a broadcast to ten thousand connections is one delivery event
// per instance already; a storm of sends is still twenty a second). Run
// hands the sample to the TrailStore every FlushEvery, off the recording
// path; the counts stay here and go out with the instance's heartbeat.
type Trail struct {
	store     TrailStore
	instance  string
	perSecond int
	every     time.Duration
	logger    *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	seconds [trailWindow + 1]secondCounts
	pending []Event
	failing bool
}

// trailWindow is how far back the counts reach, in seconds.
const trailWindow = 60

type secondCounts struct {
	at int64
	n  map[string]int
}

// TrailOptions configure a Trail.
type TrailOptions struct {
	// Instance names this instance in its events.
	Instance string
	// PerSecond bounds the events of one action kept a second; 0 means 20.
	PerSecond int
	// FlushEvery spaces the hand-overs to the store; 0 means half a second.
	FlushEvery time.Duration
	Logger     *slog.Logger
}

// maxPending bounds the sample waiting for the store (a flush every half
// second normally takes a tenth of it).
const maxPending = 2000

// NewTrail returns a Trail handing its sample to store. Call Run.
func NewTrail(store TrailStore, opts TrailOptions) *Trail {
	if opts.PerSecond <= 0 {
		opts.PerSecond = 20
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Trail{store: store, instance: opts.Instance, perSecond: opts.PerSecond, every: opts.FlushEvery,
		logger: opts.Logger, now: time.Now}
}

// Offer implements Sink: a count always, an event when the action's sample
// of this second has room.
func (t *Trail) Offer(action string, attrs []slog.Attr) {
	now := t.now()
	sec := now.Unix()
	t.mu.Lock()
	defer t.mu.Unlock()
	slot := &t.seconds[sec%int64(len(t.seconds))]
	if slot.at != sec || slot.n == nil {
		slot.at, slot.n = sec, make(map[string]int, len(slot.n))
	}
	slot.n[action]++
	// The first perSecond events of the action this second are the sample.
	if slot.n[action] > t.perSecond || len(t.pending) >= maxPending {
		return
	}
	t.pending = append(t.pending, eventOf(now.UTC(), t.instance, action, attrs))
}

// Count is how many events of an action there were.
type Count struct {
	LastSecond int
	LastMinute int
}

// Counts are the events of each action in the last whole second and the
// last minute, at now.
func (t *Trail) Counts(now time.Time) map[string]Count {
	sec := now.Unix()
	out := make(map[string]Count)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, slot := range t.seconds {
		if slot.at >= sec || slot.at < sec-trailWindow {
			continue // this second is not over, or the slot is older
		}
		for action, n := range slot.n {
			c := out[action]
			c.LastMinute += n
			if slot.at == sec-1 {
				c.LastSecond += n
			}
			out[action] = c
		}
	}
	return out
}

// Run hands the sample to the store every FlushEvery until ctx ends, then
// once more.
func (t *Trail) Run(ctx context.Context) error {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			t.flush(final)
			return nil
		case <-tick.C:
			t.flush(ctx)
		}
	}
}

// flush hands the pending events to the store. A sample the store refuses
// is dropped: the trail is a view of the moment, the log keeps everything.
func (t *Trail) flush(ctx context.Context) {
	t.mu.Lock()
	events := t.pending
	t.pending = nil
	t.mu.Unlock()
	if len(events) == 0 {
		return
	}
	err := t.store.Add(ctx, events)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err != nil && !t.failing:
		t.logger.Warn("audit trail: store refused the sample; the dashboard misses events until it accepts again", slog.Any("error", err))
	case err == nil && t.failing:
		t.logger.Info("audit trail: store accepts the sample again")
	}
	t.failing = err != nil
}
