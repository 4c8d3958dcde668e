package main

import (
	"context"
	"fmt"
	"time"
)

// The scenarios. Each is a plan: which channel the streams subscribe to,
// how many numbered messages each stream must receive, and the requests
// that carry them. Message n of a run has the title "lg-<run>-<n>"; every
// stream must receive each of its messages exactly once.
//
//	idle       open the streams and send nothing: memory per connection
//	broadcast  every stream subscribes to one channel; -messages broadcasts
//	           at -rate per second, each delivered to every stream
//	users      every stream is its own user; -messages notifications per
//	           user, -rate requests (= deliveries) per second in all
//	scheduled  -messages broadcasts scheduled for one instant -lead ahead;
//	           latency is lateness after that instant
var scenarios = []string{"idle", "broadcast", "users", "scheduled"}

const (
	sendPath     = "/api/v1/notifications/send"
	schedulePath = "/api/v1/notifications/schedule"
)

// plan is what a scenario sends and what each stream must receive.
type plan struct {
	// messages is how many numbered messages each stream must receive.
	messages int
	// channel is what every stream subscribes to ("" for none).
	channel string
	// pusherChannel is the public channel a Pusher stream subscribes to:
	// channel, or when the scenario has none one that nothing is sent to
	// (a Pusher client holds at least one channel, so an idle one does
	// too); "" in the users scenario, where each subscribes to its user's
	// private channel.
	pusherChannel string
	// batch is what to send once every stream is open (count 0: nothing).
	batch batch
	// sendIndex is the request of batch that carries stream i's message n.
	sendIndex func(i, n int) int
	// lead is how far ahead scheduled items are due; due is that instant,
	// set when sending starts, and latency is measured from it.
	lead time.Duration
	due  time.Time
	// dueAt is due as an offset from the run's start (receiver.now), taken
	// on the monotonic clock when due is set: a step of the wall clock
	// during the run (seen here once, 40 ms, on this VM) would otherwise
	// shift every lateness by the step.
	dueAt int64
}

func newPlan(cfg config, runID string, conns int) (*plan, error) {
	p := &plan{messages: cfg.messages}
	every := func(_, n int) int { return n } // a broadcast: message n is request n
	switch cfg.scenario {
	case "idle":
		p.messages = 0
	case "broadcast":
		p.channel = "lg-" + runID
		p.sendIndex = every
		p.batch = batch{path: sendPath, count: cfg.messages, body: func(k int) []byte {
			return fmt.Appendf(nil, `{"type":"loadgen","title":%q,"message":"load test","channels":[%q],"data":{"n":%d}}`,
				title(runID, k), p.channel, k)
		}}
	case "users":
		// Request k goes to user k%conns: the users take turns, so every
		// user's messages spread over the whole run.
		p.sendIndex = func(i, n int) int { return n*conns + i }
		p.batch = batch{path: sendPath, count: cfg.messages * conns, body: func(k int) []byte {
			return fmt.Appendf(nil, `{"type":"loadgen","title":%q,"message":"load test","user_id":"lg-%s-u%d","data":{"n":%d}}`,
				title(runID, k/conns), runID, k%conns, k/conns)
		}}
	case "scheduled":
		p.channel = "lg-" + runID
		p.sendIndex = every
		p.lead = cfg.lead
		p.batch = batch{path: schedulePath, count: cfg.messages, body: func(k int) []byte {
			return fmt.Appendf(nil, `{"type":"loadgen","title":%q,"message":"load test","channels":[%q],"scheduled_at":%q}`,
				title(runID, k), p.channel, p.due.Format(time.RFC3339Nano))
		}}
	default:
		return nil, fmt.Errorf("-scenario %q: want one of %v", cfg.scenario, scenarios)
	}
	switch {
	case p.channel != "":
		p.pusherChannel = p.channel
	case cfg.scenario == "idle":
		p.pusherChannel = "lg-" + runID + "-idle"
	}
	p.batch.rate = cfg.rate
	p.batch.workers = cfg.senders
	return p, nil
}

// drive sends the plan's requests and waits until every stream has every
// message the server accepted, the server drops a stream, drain passes
// after the last send, or ctx ends. It returns what was sent.
func (p *plan) drive(ctx context.Context, sd *sender, rec *receiver, f *fleet, drain time.Duration, logf func(string, ...any)) sendOutcome {
	if p.lead > 0 {
		// Milliseconds, as the server keeps them; a wall-clock instant
		// (Truncate drops the monotonic reading), as the server fires it.
		now := time.Now()
		p.due = now.Add(p.lead).Truncate(time.Millisecond)
		p.dueAt = rec.now() + int64(p.due.Sub(now.Round(0)))
	}
	stopProgress := progress(2*time.Second, func() {
		logf("sending: %d deliveries so far", rec.fresh.Load())
	})
	out := sd.send(ctx, p.batch, rec.now)
	stopProgress()
	if !p.due.IsZero() && time.Now().After(p.due) {
		logf("warning: scheduling took past the due time; raise -lead")
	}

	expected := p.expected(out, len(f.streams))
	deadline := time.Now().Add(drain)
	if !p.due.IsZero() {
		deadline = p.due.Add(drain)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var droppedSince time.Time
	for rec.fresh.Load() < expected {
		// A dropped stream's missing messages never come; give the others
		// a moment, then stop waiting.
		if f.dropped.Load() > 0 && droppedSince.IsZero() {
			droppedSince = time.Now()
			logf("the server ended %d streams; waiting 3s for the rest", f.dropped.Load())
		}
		if !droppedSince.IsZero() && time.Since(droppedSince) > 3*time.Second || time.Now().After(deadline) {
			return out
		}
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
	}
	return out
}

// expected is how many deliveries the accepted requests make.
func (p *plan) expected(out sendOutcome, streams int) int64 {
	var n int64
	for i := range streams {
		for m := range p.messages {
			if out.accepted[p.sendIndex(i, m)] {
				n++
			}
		}
	}
	return n
}

// deliveryCounts is what the streams received against what they should.
type deliveryCounts struct {
	expected, delivered, lost, duplicated, stray int64
	// first and last bound the delivery window (offsets from the run's
	// start): the first send (scheduled: the due time) and the last
	// receipt.
	first, last int64
	lat         latencies
}

// count reads every stream's tally; call it once the readers have ended.
func (p *plan) count(out sendOutcome, streams []*stream) deliveryCounts {
	var c deliveryCounts
	if p.messages == 0 || len(out.accepted) == 0 {
		return c
	}
	due := p.dueAt
	c.first = -1
	for k, ok := range out.accepted {
		if ok && (c.first < 0 || out.sentAt[k] < c.first) {
			c.first = out.sentAt[k]
		}
	}
	if !p.due.IsZero() {
		c.first = due
	}
	c.lat.samples = make([]time.Duration, 0, len(streams)*p.messages)
	for _, s := range streams {
		c.duplicated += int64(s.got.dup)
		c.stray += int64(s.got.stray)
		for n, at := range s.got.at {
			k := p.sendIndex(s.index, n)
			if !out.accepted[k] {
				continue
			}
			c.expected++
			if at == 0 {
				c.lost++
				continue
			}
			c.delivered++
			c.last = max(c.last, at)
			ref := out.sentAt[k]
			if !p.due.IsZero() {
				ref = due
			}
			c.lat.add(time.Duration(at - ref))
		}
	}
	return c
}
