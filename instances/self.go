package instances

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Sample is a reading of an instance's own counters, as the metrics hold
// them: cheap to take once a heartbeat, and nothing on any delivery path.
type Sample struct {
	Connections   map[string]int
	Accepted      uint64
	Deliveries    uint64
	DroppedFrames uint64
	SlowConsumers uint64
	// LatencyBounds are the delivery latency histogram's upper bounds in
	// seconds; LatencyCounts the cumulative count at each bound, then the
	// total (the +Inf bucket).
	LatencyBounds []float64
	LatencyCounts []uint64
}

// window is how far back a Report looks: a minute.
const window = time.Minute

// Self is this instance's side of the registry: every heartbeat it takes a
// Sample, keeps the last minute of them, and beats the Report they make.
// It owns one ticker; Run stops it and takes the instance off the list.
type Self struct {
	registry Registry
	opts     SelfOptions
	host     string

	mu      sync.Mutex
	samples []timedSample // the last minute, oldest first
	failing bool
}

type timedSample struct {
	at time.Time
	Sample
}

// SelfOptions say who this instance is and where its figures come from.
type SelfOptions struct {
	ID, Version string
	Started     time.Time
	// Heartbeat spaces the reports; 0 means a second.
	Heartbeat time.Duration
	Sample    func() Sample
	// Actions, when set, counts the audit events by action.
	Actions func() map[string]Activity
	Logger  *slog.Logger
}

// NewSelf returns this instance's reporter on registry.
func NewSelf(registry Registry, opts SelfOptions) *Self {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	return &Self{registry: registry, opts: opts, host: host}
}

// Run reports at once and then every heartbeat until ctx ends; then takes
// the instance off the list.
func (s *Self) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.Heartbeat)
	defer t.Stop()
	for {
		s.beat(ctx, s.observe(time.Now()))
		select {
		case <-ctx.Done():
			leave, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if err := s.registry.Leave(leave, s.opts.ID); err != nil {
				s.opts.Logger.Warn("instances: could not leave the list; it lapses by itself", slog.Any("error", err))
			}
			return nil
		case <-t.C:
		}
	}
}

func (s *Self) beat(ctx context.Context, r Report) {
	err := s.registry.Beat(ctx, r)
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil && !s.failing:
		s.opts.Logger.Warn("instances: heartbeat failed; this instance may drop off the dashboard until it succeeds", slog.Any("error", err))
	case err == nil && s.failing:
		s.opts.Logger.Info("instances: heartbeat succeeds again")
	}
	s.failing = err != nil
}

// observe takes a sample at now and makes the report of the last minute.
func (s *Self) observe(now time.Time) Report {
	sample := s.opts.Sample()
	var actions map[string]Activity
	if s.opts.Actions != nil {
		actions = s.opts.Actions()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, timedSample{now, sample})
	// Keep what reaches back one window: the oldest sample kept is the
	// newest at or before now - window.
	drop := 0
	for drop+1 < len(s.samples) && !s.samples[drop+1].at.After(now.Add(-window)) {
		drop++
	}
	s.samples = s.samples[drop:]

	r := Report{
		ID: s.opts.ID, Version: s.opts.Version, Host: s.host, PID: os.Getpid(), Started: s.opts.Started, At: now,
		Connections: sample.Connections, Actions: actions,
		Totals: Totals{Accepted: sample.Accepted, Deliveries: sample.Deliveries,
			DroppedFrames: sample.DroppedFrames, SlowConsumers: sample.SlowConsumers},
		PerSecond: Series{Accepted: []float64{}, Deliveries: []float64{}},
	}
	for i := 1; i < len(s.samples); i++ {
		a, b := s.samples[i-1], s.samples[i]
		dt := b.at.Sub(a.at).Seconds()
		if dt <= 0 {
			continue
		}
		r.PerSecond.Accepted = append(r.PerSecond.Accepted, float64(b.Accepted-a.Accepted)/dt)
		r.PerSecond.Deliveries = append(r.PerSecond.Deliveries, float64(b.Deliveries-a.Deliveries)/dt)
	}
	oldest := s.samples[0].Sample
	r.LastMinute = Counts{Accepted: sample.Accepted - oldest.Accepted, Deliveries: sample.Deliveries - oldest.Deliveries}
	r.Latency = latencyBetween(oldest, sample)
	return r
}

// latencyBetween estimates the quantiles of the deliveries observed
// between two samples.
func latencyBetween(old, now Sample) Latency {
	n := len(now.LatencyCounts)
	if n == 0 || n != len(now.LatencyBounds)+1 {
		return Latency{}
	}
	delta := make([]uint64, n)
	for i := range delta {
		delta[i] = now.LatencyCounts[i]
		if len(old.LatencyCounts) == n {
			delta[i] -= old.LatencyCounts[i]
		}
	}
	total := delta[n-1]
	if total == 0 {
		return Latency{}
	}
	return Latency{
		P50: quantile(0.5, now.LatencyBounds, delta), P99: quantile(0.99, now.LatencyBounds, delta), Count: total,
	}
}

// quantile is the q-quantile of cumulative bucket counts cum (the last one
// the total), interpolated linearly within its bucket; in the +Inf bucket,
// the largest bound.
func quantile(q float64, bounds []float64, cum []uint64) float64 {
	rank := q * float64(cum[len(cum)-1])
	lower, below := 0.0, uint64(0)
	for i, upper := range bounds {
		if float64(cum[i]) >= rank {
			in := cum[i] - below
			if in == 0 {
				return upper
			}
			return lower + (upper-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = upper, cum[i]
	}
	return bounds[len(bounds)-1]
}
