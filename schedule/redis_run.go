package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// Run and its loops: the event reader, the timer that touches due
// triggers, and the state they share. Claiming and firing are in
// redis_fire.go.

// Run fires due items until ctx is done, then returns nil. It never returns
// because Redis is gone: it logs, retries with backoff, and catches up once
// Redis answers again. Items it has claimed but not fired when ctx ends are
// put back, due as before, for another instance (or the next start).
//
// Run owns four goroutines besides go-redis's subscription reader: its own
// (the event reader), the timer loop, the worker that claims and fires, and
// the acker; all have ended when it returns.
func (r *Redis) Run(ctx context.Context, fire FireFunc) error {
	rn := &runner{
		r:       r,
		fire:    fire,
		runID:   redisconn.RandomHex(6),
		claims:  make(chan string, r.queueSize),
		resync:  make(chan struct{}, 1),
		catchUp: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		acks:    make(chan []claimed, ackBuffer),
	}
	rn.hint.Store(noHint)

	// If Redis is down, Subscribe still records the channels, and go-redis
	// subscribes as soon as it can connect: the confirmation starts the
	// catch-up either way.
	ps := r.client.Subscribe(ctx, r.expiredChannel, r.changedChannel)
	msgs := ps.ChannelWithSubscriptions(redis.WithChannelSize(eventBuffer))

	var wg sync.WaitGroup
	wg.Go(func() { rn.keepTime(ctx) })
	var acking sync.WaitGroup
	acking.Go(func() { rn.ackFired(ctx) })
	wg.Go(func() {
		rn.work(ctx)
		// The worker is the only sender: what it fired is acked before
		// Run returns.
		close(rn.acks)
		acking.Wait()
	})
	rn.read(ctx, msgs)

	_ = ps.Close()
	for range msgs {
		// go-redis closes msgs when its reader has stopped.
	}
	wg.Wait()
	return nil
}

// noHint is the empty value of runner.hint.
const noHint = math.MaxInt64

// runner is the state of one Run.
type runner struct {
	r     *Redis
	fire  FireFunc
	runID string
	seq   atomic.Uint64 // numbers claims, so every claim has its own token

	// claims carries ids from expiry events (and stale items the timer
	// found) to the worker.
	claims chan string
	// resync asks the worker to check the event settings, then catch up:
	// a subscription was (re)established. catchUp asks only for the
	// catch-up. Both have capacity one, so a pending request covers any
	// number of reasons.
	resync, catchUp chan struct{}

	// wake tells the timer loop to look at hint (the earliest due time
	// another instance announced) and at needSync (start over from Redis).
	wake     chan struct{}
	hint     atomic.Int64
	needSync atomic.Bool

	// acks carries fired items, a claimed slice at a time, from the
	// worker to the acker, so the round trip of an ack never delays the
	// next claim.
	acks chan []claimed
}

// read hands every message on: it never blocks on Redis or on firing, so
// go-redis's channel never fills.
func (rn *runner) read(ctx context.Context, msgs <-chan any) {
	r := rn.r
	var lastDropLog time.Time
	subscribed := false // to the expiry events, once already
	for {
		var msg any
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				// Closed only by ps.Close, which Run calls after this
				// returns; wait for the end rather than spin.
				<-ctx.Done()
				return
			}
			msg = m
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			// Subscribed, at start-up or after a reconnect: whatever
			// expired or was added while nobody listened is caught up.
			// Each channel confirms separately, so the last confirmation
			// starts a catch-up that follows both.
			r.logger.LogAttrs(ctx, slog.LevelDebug, "schedule: subscribed", slog.String("channel", m.Channel))
			if m.Channel == r.expiredChannel {
				if subscribed {
					r.hooks.Reconnected()
				}
				subscribed = true
			}
			signal(rn.resync)
			rn.needSync.Store(true)
			signal(rn.wake)
		case *redis.Message:
			switch m.Channel {
			case r.expiredChannel:
				id, ours := strings.CutPrefix(m.Payload, r.triggerPrefix)
				if !ours {
					continue
				}
				select {
				case rn.claims <- id:
				default:
					n := r.dropped.Add(1)
					signal(rn.catchUp)
					if time.Since(lastDropLog) > time.Second {
						lastDropLog = time.Now()
						r.logger.LogAttrs(ctx, slog.LevelWarn, "schedule: claim queue full, expiry event dropped; a catch-up will claim its item",
							slog.String("id", id), slog.Uint64("dropped_total", n))
					}
				}
			case r.changedChannel:
				ms, err := strconv.ParseInt(m.Payload, 10, 64)
				if err != nil {
					continue
				}
				for {
					cur := rn.hint.Load()
					if ms >= cur || rn.hint.CompareAndSwap(cur, ms) {
						break
					}
				}
				signal(rn.wake)
			}
		}
	}
}

// keepTime owns the one timer: armed 1 ms after the earliest due item (or
// lease deadline), it runs a pass that touches the due triggers.
func (rn *runner) keepTime(ctx context.Context) {
	// Go 1.23 timers: Reset and Stop never leave a stale tick in timer.C.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var deadline time.Time // zero: nothing to wait for
	st := passState{from: touchAll}
	bo := newBackoff()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rn.wake:
			if rn.needSync.Swap(false) {
				st = passState{from: touchAll}
				deadline = time.Now()
			}
			if ms := rn.hint.Swap(noHint); ms != noHint {
				// An item put back below where the passes have got to is
				// touched by its own script, unless Redis's clock had not
				// quite reached it: look again from there.
				st.from = min(st.from, ms)
				at := time.UnixMilli(ms).Add(time.Millisecond)
				if deadline.IsZero() || at.Before(deadline) {
					deadline = at
				}
			}
		case <-timer.C:
			next, err := rn.pass(ctx, &st)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				wait := bo.Next()
				rn.r.logger.LogAttrs(ctx, slog.LevelWarn, "schedule: timer pass failed, will retry",
					slog.Duration("retry_in", wait), slog.Any("error", err))
				deadline = time.Now().Add(wait)
				break
			}
			bo.Reset()
			deadline = next
		}
		if deadline.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(deadline))
		}
	}
}

// touchAll as passState.from makes a pass touch every due trigger.
const touchAll = math.MinInt64

// passState is what one timer pass leaves the next.
type passState struct {
	// from is the due time (ms) from which triggers are still to be
	// touched: those before it are touched already, and touching them
	// again every millisecond would only load Redis when events lag.
	from int64
	// staleAt is when to look for items whose trigger is gone but which
	// are still indexed overdueGrace after their time (zero: no need).
	staleAt time.Time
}

// pass touches the triggers due by the local clock that no pass has touched
// yet, so Redis expires them and publishes their events now; when it is
// time, sends items overdue by more than overdueGrace whose trigger is gone
// straight to the worker; puts back items whose lease ran out; and returns
// when to run again.
func (rn *runner) pass(ctx context.Context, st *passState) (time.Time, error) {
	r := rn.r
	now := time.Now()
	from := "-inf"
	if st.from != touchAll {
		from = strconv.FormatInt(st.from, 10)
	}
	checkStale := !st.staleAt.IsZero() && !now.Before(st.staleAt)
	res, err := passScript.Run(ctx, r.client, nil, string(r.prefix), from, now.UnixMilli(),
		checkStale, r.overdueGrace.Milliseconds(), touchLimit).Slice()
	if err != nil {
		return time.Time{}, rn.r.hooks.Wrap("schedule: timer pass", err)
	}
	if len(res) != 8 {
		return time.Time{}, fmt.Errorf("schedule: timer pass: unexpected reply %v", res)
	}
	touched, _ := res[0].(int64)
	alive, _ := res[1].(int64)
	resume, oldest, nextDue, nextLease := msOf(res[2]), msOf(res[3]), msOf(res[4]), msOf(res[5])
	reclaimed, _ := res[6].([]any)
	stale, _ := res[7].([]any)

	for _, id := range reclaimed {
		r.logger.LogAttrs(ctx, slog.LevelWarn, "schedule: lease expired before ack, item put back to fire again (at least once)",
			slog.Any("id", id))
	}
	for _, v := range stale {
		id, _ := v.(string)
		select {
		case rn.claims <- id:
		default:
			signal(rn.catchUp)
		}
	}

	st.from = resume
	if checkStale {
		st.staleAt = time.Time{}
	}
	if oldest > 0 && oldest < now.UnixMilli() {
		// Overdue items are left, their events normally on the way: look
		// again when the oldest would count as lost.
		lost := time.UnixMilli(oldest + r.overdueGrace.Milliseconds() + 1)
		if soonest := now.Add(staleRecheck); lost.Before(soonest) {
			lost = soonest
		}
		if st.staleAt.IsZero() || lost.Before(st.staleAt) {
			st.staleAt = lost
		}
	}

	next := st.staleAt
	earliest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if nextDue > 0 {
		earliest(time.UnixMilli(nextDue + 1))
	}
	if nextLease > 0 {
		earliest(time.UnixMilli(nextLease + 1))
	}
	switch {
	case touched >= touchLimit:
		earliest(now) // more due triggers than one pass touches
	case alive > 0:
		// Redis's clock is behind ours: touch again shortly.
		earliest(now.Add(time.Millisecond))
	}
	return next, nil
}

// msOf reads a score the scripts return as a string ("" for none).
func msOf(v any) int64 {
	s, _ := v.(string)
	if s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int64(f)
}

// signal sends on a channel of capacity one without blocking: a pending
// signal already covers this one.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
