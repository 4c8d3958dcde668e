package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/internal/redisconn"
	"notification-service/store"
)

// Redis is a Scheduler whose items live in Redis, shared by every instance
// of the service (DESIGN §6). Any instance can add, list or cancel any item,
// and items survive restarts of the service.
//
// Keys, under the prefix p:
//
//	p sched:items           HASH   id → item JSON (pending and in flight)
//	p sched:users           HASH   id → JSON array of the user ids it addresses
//	p sched:due             ZSET   pending ids by due time (ms): ScheduledAt, or the retry time
//	p sched:user:<user_id>  ZSET   that user's ids (pending and in flight) by ScheduledAt (ms)
//	p sched:trigger:<id>    STRING "1" with PEXPIREAT at the due time: its expiry fires the item
//	p sched:inflight        ZSET   claimed ids by lease deadline (ms, Redis clock)
//	p sched:claims          HASH   id → "<claim token>|<due ms>" while in flight
//	p sched:changed         channel: the due time (ms) of an item just added or put back
//
// Firing. Every Run listens to __keyevent@<db>__:expired. An expired trigger
// of ours makes the instance claim, with one Lua script, every pending item
// due no later than that trigger's item (at most claimLimit at a time, in due
// order): the script moves them from the due index to the in-flight set with
// a lease, so exactly one instance gets each. It fires them in order and
// acks them (they are deleted), batched, off the firing path; a failed fire
// puts its item back, due retryDelay later. Every instance sees every event
// and races for the claim; the loser's script finds nothing.
//
// Expiry events alone come late: Redis publishes "expired" only when it
// deletes a key, and its background cycle samples keys. So each Run keeps
// one timer on the earliest due item and, 1 ms after it (Redis expires a key
// only once now is strictly past its time), touches the due triggers with
// EXISTS, which makes Redis delete them and publish their events at once.
// The events stay the trigger and the claim stays atomic. An Add on any
// instance publishes its due time on p sched:changed, so every timer learns
// of an earlier item.
//
// Catch-up. Expiry events are not stored: one published while an instance
// is not subscribed is lost to it, and Redis drops already-expired keys
// silently when it reloads its data. So at start-up and after every
// resubscription (a reconnect), Run claims everything already due; the timer
// pass claims items whose trigger is gone but which are still indexed
// overdueGrace after their time (a lost event, expiry events switched off);
// and an instance that died between claim and ack leaves a lease that
// expires, after which any instance puts the item back and fires it. That
// last case is the one place an item can fire twice: at least once for the
// items fired but not yet acked when the instance died (a few
// milliseconds' worth); in the normal path each fires exactly once.
//
// Redis must publish keyevent notifications for expired keys
// (notify-keyspace-events with "Ex"): Prepare checks and adds them, and Run
// adds them again after each reconnect, since a restarted Redis may have
// forgotten a CONFIG SET. The scripts derive their keys from the prefix, so
// Redis is one standalone server (or one primary), not a Cluster; they use
// SET … PXAT, so Redis 6.2 or later.
type Redis struct {
	client *redis.Client
	prefix redisconn.Prefix
	logger *slog.Logger
	hooks  redisconn.Hooks

	expiredChannel string // __keyevent@<db>__:expired
	changedChannel string
	triggerPrefix  string

	// lease is how long a claimed item belongs to its instance before any
	// instance may take it back: far longer than a fire takes (a fire gets
	// half of it), short enough that a crash delays an item by seconds.
	lease time.Duration
	// overdueGrace is how long past its time an item whose trigger is gone
	// may wait for its expiry event before the timer pass claims it itself.
	overdueGrace time.Duration
	// queueSize is the capacity of the claim queue behind the event reader.
	queueSize int

	dropped atomic.Uint64
}

// Tunables of Redis; tests change lease, overdueGrace and queueSize on the
// value.
const (
	defaultLease        = 30 * time.Second
	defaultOverdueGrace = time.Second
	// claimLimit bounds one claim: a burst of due items is claimed and
	// fired in slices, so other instances take their share and a lease
	// never runs out while its slice waits.
	claimLimit = 64
	// touchLimit bounds the due triggers one timer pass touches.
	touchLimit = 1000
	// eventBuffer sizes go-redis's message channel and the claim queue:
	// go-redis drops a message once its channel has been blocked for a
	// while, so the reader never blocks, and when the queue behind it is
	// full it counts the drop and asks for a catch-up instead.
	eventBuffer = 4096
	// staleRecheck is the soonest the timer looks again at due items whose
	// events are on their way.
	staleRecheck = 100 * time.Millisecond
	// ackBuffer bounds the fired slices waiting for their ack; a full
	// buffer holds the worker back. ackLimit bounds the items of one ack.
	ackBuffer = 64
	ackLimit  = 1000
	// settleTimeout bounds one ack or put-back, also during shutdown.
	settleTimeout = 3 * time.Second
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 5 * time.Second
)

// newBackoff spaces the retries of one of Run's loops while Redis is away.
func newBackoff() redisconn.Backoff {
	return redisconn.Backoff{Min: minBackoff, Max: maxBackoff}
}

// ErrExpiryEventsOff means Redis does not publish the expired-key events the
// Redis scheduler runs on, and the service could not turn them on.
var ErrExpiryEventsOff = errors.New("schedule: Redis does not publish expired-key events")

// expiryEventsHelp tells the operator what to change.
const expiryEventsHelp = `notify-keyspace-events must include "Ex" (keyevent notifications for expired keys), ` +
	`added to whatever flags are already set: run CONFIG SET notify-keyspace-events Ex, ` +
	`or set it in redis.conf or your provider's parameter group`

// errConfigRefused means Redis answered CONFIG with an error (renamed,
// forbidden by ACL, a managed service): the setting cannot be read or
// changed from here.
var errConfigRefused = errors.New("CONFIG refused")

// RedisOptions configure a Redis scheduler.
type RedisOptions struct {
	// Prefix starts every key and channel.
	Prefix redisconn.Prefix
	// Logger gets fire failures and Redis trouble; nil discards them.
	Logger *slog.Logger
	// OnError is called for each Redis command of the scheduler that
	// failed (metrics); nil means nobody is told.
	OnError func()
	// OnReconnect is called when Run has resubscribed to the expiry
	// events after losing its connection: Redis is back (metrics); nil
	// means nobody is told.
	OnReconnect func()
}

// NewRedis returns a scheduler keeping its items in client's database under
// opts.Prefix. Call Prepare once at start-up.
func NewRedis(client *redis.Client, opts RedisOptions) *Redis {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	prefix := opts.Prefix
	return &Redis{
		client:         client,
		prefix:         prefix,
		logger:         opts.Logger,
		hooks:          redisconn.Hooks{OnError: opts.OnError, OnReconnect: opts.OnReconnect},
		expiredChannel: fmt.Sprintf("__keyevent@%d__:expired", client.Options().DB),
		changedChannel: prefix.Key("sched", "changed"),
		triggerPrefix:  prefix.Key("sched", "trigger", ""),
		lease:          defaultLease,
		overdueGrace:   defaultOverdueGrace,
		queueSize:      eventBuffer,
	}
}

// Pending counts the items waiting for their time (not those being fired):
// one ZCARD, for the metrics' scrape.
func (r *Redis) Pending(ctx context.Context) (int, error) {
	n, err := r.client.ZCard(ctx, r.prefix.Key("sched", "due")).Result()
	if err != nil {
		return 0, r.hooks.Wrap("schedule: count pending", err)
	}
	return int(n), nil
}

// DroppedEvents counts expiry events the reader could not hand on because
// the claim queue was full. Each drop triggers a catch-up, so nothing is
// lost, but a growing count means the instance cannot keep up.
func (r *Redis) DroppedEvents() uint64 { return r.dropped.Load() }

// Prepare makes sure Redis publishes expired-key events, adding "Ex" to
// notify-keyspace-events and keeping the flags already set. Where CONFIG is
// not available (a managed Redis), it checks with a probe key that the
// events arrive. It returns ErrExpiryEventsOff, with what the operator must
// set, when they do not; an error wrapping store.ErrUnavailable when
// Redis cannot be reached.
func (r *Redis) Prepare(ctx context.Context) error {
	err := r.ensureExpiryEvents(ctx)
	if err == nil || !errors.Is(err, errConfigRefused) {
		return err
	}
	on, perr := r.probeExpiryEvents(ctx)
	if perr != nil {
		return perr
	}
	if !on {
		return fmt.Errorf("%w: %s (%v)", ErrExpiryEventsOff, expiryEventsHelp, err)
	}
	r.logger.LogAttrs(ctx, slog.LevelInfo, "schedule: Redis publishes expired-key events (checked with a probe key; CONFIG is not available)",
		slog.String("config_error", err.Error()))
	return nil
}

// ensureExpiryEvents adds "Ex" to notify-keyspace-events when it lacks
// them. It returns an error wrapping errConfigRefused when Redis refuses
// CONFIG.
func (r *Redis) ensureExpiryEvents(ctx context.Context) error {
	const param = "notify-keyspace-events"
	got, err := r.client.ConfigGet(ctx, param).Result()
	if err != nil {
		if redisconn.Unavailable(err) {
			return r.hooks.Wrap("schedule: CONFIG GET "+param, err)
		}
		return fmt.Errorf("schedule: CONFIG GET %s: %w: %w", param, errConfigRefused, err)
	}
	cur := got[param]
	want := withExpiryEvents(cur)
	if want == cur {
		return nil
	}
	if err := r.client.ConfigSet(ctx, param, want).Err(); err != nil {
		if redisconn.Unavailable(err) {
			return r.hooks.Wrap("schedule: CONFIG SET "+param, err)
		}
		return fmt.Errorf("schedule: CONFIG SET %s %s: %w: %w", param, want, errConfigRefused, err)
	}
	r.logger.LogAttrs(ctx, slog.LevelInfo, "schedule: turned on expired-key events in Redis",
		slog.String(param, want), slog.String("was", cur))
	return nil
}

// withExpiryEvents returns flags with keyevent notifications ('E') for
// expired keys ('x', which 'A' includes) added, the others kept.
func withExpiryEvents(flags string) string {
	if !strings.Contains(flags, "E") {
		flags += "E"
	}
	if !strings.ContainsAny(flags, "xA") {
		flags += "x"
	}
	return flags
}

// probeExpiryEvents expires a key of its own and reports whether the
// expired event reaches a subscriber.
func (r *Redis) probeExpiryEvents(ctx context.Context) (bool, error) {
	const op = "schedule: probe expired-key events"
	ps := r.client.Subscribe(ctx, r.expiredChannel)
	defer ps.Close()
	// Wait for the subscription to be confirmed, so the probe's event
	// cannot be published before anyone listens.
	if _, err := ps.ReceiveTimeout(ctx, 2*time.Second); err != nil {
		return false, r.hooks.Wrap(op, err)
	}
	key := r.prefix.Key("sched", "probe", redisconn.RandomHex(8))
	if err := r.client.Set(ctx, key, "1", time.Millisecond).Err(); err != nil {
		return false, r.hooks.Wrap(op, err)
	}
	// Touch the key until Redis has expired it (1 ms from now), which
	// publishes the event if events are on.
	touch := time.NewTicker(time.Millisecond)
	defer touch.Stop()
	for {
		n, err := r.client.Exists(ctx, key).Result()
		if err != nil {
			return false, r.hooks.Wrap(op, err)
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-touch.C:
		}
	}
	deadline := time.Now().Add(time.Second)
	for {
		msg, err := ps.ReceiveTimeout(ctx, time.Until(deadline))
		if err != nil {
			if time.Now().After(deadline) {
				return false, nil
			}
			return false, r.hooks.Wrap(op, err)
		}
		if m, ok := msg.(*redis.Message); ok && m.Payload == key {
			return true, nil
		}
	}
}

// storedItem is an Item as the scripts keep it.
type storedItem struct {
	ID            string                `json:"id"`
	ScheduledAt   time.Time             `json:"scheduled_at"`
	CreatedAt     time.Time             `json:"created_at"`
	Notifications []broker.Notification `json:"notifications"`
}

func decodeItem(raw string) (Item, error) {
	var s storedItem
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Item{}, err
	}
	return Item(s), nil
}

// dueMillis is when the item is due on the scripts' millisecond clock,
// rounded up so that "strictly past it" is never before ScheduledAt.
func dueMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return max(ms, 1) // PEXPIREAT needs a positive time
}

// Add stores it, due at its ScheduledAt. An item already due is published
// at once: the script touches its trigger, which expires it.
func (r *Redis) Add(ctx context.Context, it Item) error {
	body, err := json.Marshal(storedItem(it))
	if err != nil {
		return fmt.Errorf("schedule: add %s: %w", it.ID, err)
	}
	args := []any{string(r.prefix), it.ID, body, dueMillis(it.ScheduledAt), it.ScheduledAt.UnixMilli()}
	for _, u := range it.UserIDs() {
		args = append(args, u)
	}
	added, err := addScript.Run(ctx, r.client, nil, args...).Int()
	if err != nil {
		return r.hooks.Wrap("schedule: add "+it.ID, err)
	}
	if added == 0 {
		return fmt.Errorf("schedule: add %s: %w", it.ID, ErrDuplicate)
	}
	return nil
}

// Get returns a pending item.
func (r *Redis) Get(ctx context.Context, id string) (Item, error) {
	found, err := getScript.Run(ctx, r.client, nil, string(r.prefix), id).StringSlice()
	if err != nil {
		return Item{}, r.hooks.Wrap("schedule: get "+id, err)
	}
	if len(found) == 0 {
		return Item{}, fmt.Errorf("schedule: get %s: %w", id, ErrNotFound)
	}
	it, err := decodeItem(found[0])
	if err != nil {
		return Item{}, fmt.Errorf("schedule: get %s: decode: %w", id, err)
	}
	return it, nil
}

// List returns the pending items, earliest ScheduledAt first. With userID
// set it reads only that user's index.
func (r *Redis) List(ctx context.Context, userID string) ([]Item, error) {
	raws, err := listScript.Run(ctx, r.client, nil, string(r.prefix), userID).StringSlice()
	if err != nil {
		return nil, r.hooks.Wrap("schedule: list", err)
	}
	items := make([]Item, 0, len(raws))
	for _, raw := range raws {
		it, err := decodeItem(raw)
		if err != nil {
			return nil, fmt.Errorf("schedule: list: decode: %w", err)
		}
		items = append(items, it)
	}
	slices.SortFunc(items, compareItems)
	return items, nil
}

// Cancel removes a pending item and returns it.
func (r *Redis) Cancel(ctx context.Context, id string) (Item, error) {
	found, err := cancelScript.Run(ctx, r.client, nil, string(r.prefix), id).StringSlice()
	if err != nil {
		return Item{}, r.hooks.Wrap("schedule: cancel "+id, err)
	}
	if len(found) == 0 {
		return Item{}, fmt.Errorf("schedule: cancel %s: %w", id, ErrNotFound)
	}
	it, err := decodeItem(found[0])
	if err != nil {
		return Item{}, fmt.Errorf("schedule: cancel %s: decode: %w", id, err)
	}
	return it, nil
}

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

// claimed is an item this Run holds: claimed with token until leaseEnd.
type claimed struct {
	item     Item
	due      int64
	token    string
	leaseEnd time.Time
}

// work claims and fires, one claim at a time, so the items of one instance
// fire in due order.
func (rn *runner) work(ctx context.Context) {
	bo := newBackoff()
	for {
		var ids []string
		all := false
		retry := rn.catchUp
		select {
		case <-ctx.Done():
			return
		case <-rn.resync:
			err := rn.r.ensureExpiryEvents(ctx)
			switch {
			case err == nil:
			case errors.Is(err, store.ErrUnavailable):
				// Not refused, just not reachable: try again below.
				retry = rn.resync
			case ctx.Err() == nil:
				rn.r.logger.LogAttrs(ctx, slog.LevelError, "schedule: cannot make sure Redis publishes expired-key events; items fire up to "+
					rn.r.overdueGrace.String()+" late until it does: "+expiryEventsHelp,
					slog.Any("error", err))
			}
			all = true
		case <-rn.catchUp:
			all = true
		case id := <-rn.claims:
			ids = append(ids, id)
		drain:
			for len(ids) < claimLimit {
				select {
				case id := <-rn.claims:
					ids = append(ids, id)
				default:
					break drain
				}
			}
		}
		err := rn.claimAndFire(ctx, ids, all)
		if err == nil && retry == rn.catchUp {
			bo.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		wait := bo.Next()
		if err != nil {
			rn.r.logger.LogAttrs(ctx, slog.LevelWarn, "schedule: claim failed, will catch up",
				slog.Duration("retry_in", wait), slog.Any("error", err))
		}
		// Whatever those events were for is still due: claim it all,
		// after the backoff or as soon as a resubscription says Redis is
		// back.
		select {
		case <-ctx.Done():
			return
		case <-rn.resync:
			signal(rn.resync)
		case <-time.After(wait):
			signal(retry)
		}
	}
}

// claimAndFire claims what ids point at (everything due when all is set),
// slice by slice, and fires it.
func (rn *runner) claimAndFire(ctx context.Context, ids []string, all bool) error {
	for ctx.Err() == nil {
		batch, err := rn.claim(ctx, ids, all)
		if err != nil {
			return err
		}
		rn.fireAll(ctx, batch)
		if len(batch) < claimLimit {
			return nil
		}
	}
	return nil
}

// claim runs the claim script: with all, every item due; otherwise every
// item due no later than the latest of ids still pending (an expired trigger
// proves its item, and anything due before it, is due).
func (rn *runner) claim(ctx context.Context, ids []string, all bool) ([]claimed, error) {
	r := rn.r
	token := rn.runID + "." + strconv.FormatUint(rn.seq.Add(1), 10)
	args := make([]any, 0, 4+len(ids))
	args = append(args, string(r.prefix), token, r.lease.Milliseconds(), claimLimit)
	if !all {
		if len(ids) == 0 {
			return nil, nil
		}
		for _, id := range ids {
			args = append(args, id)
		}
	}
	leaseEnd := time.Now().Add(r.lease)
	// A claim cut off by shutdown could take items without telling us,
	// leaving them to wait out the lease: let it finish, and fireAll puts
	// back what it got.
	claimCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	vals, err := claimScript.Run(claimCtx, r.client, nil, args...).StringSlice()
	if err != nil {
		return nil, rn.r.hooks.Wrap("schedule: claim", err)
	}
	batch := make([]claimed, 0, len(vals)/3)
	for i := 0; i+2 < len(vals); i += 3 {
		id, raw := vals[i], vals[i+1]
		due, _ := strconv.ParseInt(vals[i+2], 10, 64)
		c := claimed{due: due, token: token, leaseEnd: leaseEnd}
		c.item, err = decodeItem(raw)
		if err != nil {
			// It can never be fired: drop it rather than reclaim it
			// every lease.
			r.logger.LogAttrs(ctx, slog.LevelError, "schedule: undecodable item dropped",
				slog.String("id", id), slog.Any("error", err))
			c.item.ID = id
			rn.acks <- []claimed{c}
			continue
		}
		batch = append(batch, c)
	}
	return batch, nil
}

// fireAll fires a claimed slice in order, then hands what fired to the
// acker. When ctx ends, the items not fired yet are put back, due as
// before.
func (rn *runner) fireAll(ctx context.Context, batch []claimed) {
	r := rn.r
	fired := make([]claimed, 0, len(batch))
	defer func() {
		if len(fired) > 0 {
			rn.acks <- fired
		}
	}()
	for i, c := range batch {
		if ctx.Err() != nil {
			for _, c := range batch[i:] {
				rn.settle(ctx, []claimed{c}, "put back", func(ctx context.Context, cs []claimed) error {
					return rn.release(ctx, cs[0], c.due)
				})
			}
			return
		}
		fireCtx, cancel := context.WithTimeout(ctx, r.lease/2)
		err := rn.fire(fireCtx, c.item)
		cancel()
		if err == nil {
			fired = append(fired, c)
			continue
		}
		at := time.Now().Add(retryDelay)
		if ctx.Err() != nil {
			at = time.UnixMilli(c.due) // shutting down: due as before
		}
		r.logger.LogAttrs(ctx, slog.LevelError, "schedule: fire failed, will retry",
			slog.String("id", c.item.ID),
			slog.Time("scheduled_at", c.item.ScheduledAt),
			slog.Time("retry_at", at),
			slog.Any("error", err),
		)
		rn.settle(ctx, []claimed{c}, "put back", func(ctx context.Context, cs []claimed) error {
			return rn.release(ctx, cs[0], dueMillis(at))
		})
	}
}

// ackFired acks fired items, as many as are waiting in one call, until the
// worker closes acks.
func (rn *runner) ackFired(ctx context.Context) {
	for cs := range rn.acks {
		batch := cs
	more:
		for len(batch) < ackLimit {
			select {
			case cs, ok := <-rn.acks:
				if !ok {
					break more
				}
				batch = append(batch, cs...)
			default:
				break more
			}
		}
		rn.settle(ctx, batch, "ack", rn.ack)
	}
}

// settle runs op (an ack or a put-back of items from one claim) until it
// succeeds, the lease runs out (the items are then put back by whoever sees
// the lease expire) or Run ends. It works on a context of its own, so a
// shutdown still settles.
func (rn *runner) settle(ctx context.Context, cs []claimed, what string, op func(context.Context, []claimed) error) {
	bo := newBackoff()
	leaseEnd := cs[0].leaseEnd
	for _, c := range cs[1:] {
		if c.leaseEnd.Before(leaseEnd) {
			leaseEnd = c.leaseEnd
		}
	}
	for {
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
		err := op(opCtx, cs)
		cancel()
		if err == nil {
			return
		}
		wait := bo.Next()
		if ctx.Err() != nil || time.Now().Add(wait).After(leaseEnd) {
			rn.r.logger.LogAttrs(ctx, slog.LevelError, "schedule: "+what+" failed; the items go back to pending when their lease expires",
				slog.Any("ids", idsOf(cs)), slog.Time("lease_end", leaseEnd), slog.Any("error", err))
			return
		}
		rn.r.logger.LogAttrs(ctx, slog.LevelWarn, "schedule: "+what+" failed, will retry",
			slog.Any("ids", idsOf(cs)), slog.Duration("retry_in", wait), slog.Any("error", err))
		if !redisconn.Sleep(ctx, wait) {
			return
		}
	}
}

func idsOf(cs []claimed) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.item.ID
	}
	return ids
}

// ack deletes fired items, those their claims still hold.
func (rn *runner) ack(ctx context.Context, cs []claimed) error {
	args := make([]any, 0, 1+2*len(cs))
	args = append(args, string(rn.r.prefix))
	for _, c := range cs {
		args = append(args, c.item.ID, c.token)
	}
	lost, err := ackScript.Run(ctx, rn.r.client, nil, args...).StringSlice()
	if err != nil {
		return rn.r.hooks.Wrap("schedule: ack", err)
	}
	for _, id := range lost {
		rn.r.logger.LogAttrs(ctx, slog.LevelWarn, "schedule: fired after its lease expired; another instance may fire it again",
			slog.String("id", id))
	}
	return nil
}

// release puts a claimed item back, pending and due at at (ms).
func (rn *runner) release(ctx context.Context, c claimed, at int64) error {
	_, err := releaseScript.Run(ctx, rn.r.client, nil, string(rn.r.prefix), c.item.ID, c.token, at).Int()
	return rn.r.hooks.Wrap("schedule: put back "+c.item.ID, err)
}

// signal sends on a channel of capacity one without blocking: a pending
// signal already covers this one.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// luaPrelude names the keys (DESIGN: every key under the prefix, ARGV[1])
// and arms triggers. Every script starts with it.
const luaPrelude = `
local P = ARGV[1]
local ITEMS, USERS, DUE = P .. 'sched:items', P .. 'sched:users', P .. 'sched:due'
local INFLIGHT, CLAIMS, CHANGED = P .. 'sched:inflight', P .. 'sched:claims', P .. 'sched:changed'
local function trigger(id) return P .. 'sched:trigger:' .. id end
local function userkey(u) return P .. 'sched:user:' .. u end
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- arm makes id pending, due at at (ms): indexed, with a trigger expiring
-- then, and every instance's timer told. A trigger already past is touched
-- at once: the touch expires it, so Redis publishes its event now.
local function arm(id, at, now)
  redis.call('ZADD', DUE, at, id)
  redis.call('SET', trigger(id), '1', 'PXAT', at)
  if at < now then redis.call('EXISTS', trigger(id)) end
  redis.call('PUBLISH', CHANGED, at)
end
-- forget deletes an item and its user index entries.
local function forget(id)
  redis.call('HDEL', ITEMS, id)
  local users = redis.call('HGET', USERS, id)
  if users then
    for _, u in ipairs(cjson.decode(users)) do redis.call('ZREM', userkey(u), id) end
    redis.call('HDEL', USERS, id)
  end
end
-- holds says whether the claim token still holds id.
local function holds(id, token)
  local c = redis.call('HGET', CLAIMS, id)
  return c and string.sub(c, 1, #token + 1) == token .. '|'
end
`

// addScript: ARGV prefix, id, json, due ms, ScheduledAt ms, user ids...
// Returns 0 when the id is already pending or in flight.
var addScript = redis.NewScript(luaPrelude + `
local id = ARGV[2]
if redis.call('HEXISTS', ITEMS, id) == 1 then return 0 end
redis.call('HSET', ITEMS, id, ARGV[3])
if #ARGV > 5 then
  local users = {}
  for i = 6, #ARGV do
    users[#users + 1] = ARGV[i]
    redis.call('ZADD', userkey(ARGV[i]), ARGV[5], id)
  end
  redis.call('HSET', USERS, id, cjson.encode(users))
end
arm(id, tonumber(ARGV[4]), nowms())
return 1
`)

// getScript: ARGV prefix, id. Returns {json} for a pending item, else {}.
var getScript = redis.NewScript(luaPrelude + `
local id = ARGV[2]
if not redis.call('ZSCORE', DUE, id) then return {} end
local json = redis.call('HGET', ITEMS, id)
if not json then return {} end
return {json}
`)

// listScript: ARGV prefix, user id or "". Returns the pending items' JSON.
var listScript = redis.NewScript(luaPrelude + `
local user = ARGV[2]
local ids
if user == '' then ids = redis.call('ZRANGE', DUE, 0, -1) else ids = redis.call('ZRANGE', userkey(user), 0, -1) end
local out = {}
for _, id in ipairs(ids) do
  if user == '' or redis.call('ZSCORE', DUE, id) then
    local json = redis.call('HGET', ITEMS, id)
    if json then out[#out + 1] = json end
  end
end
return out
`)

// cancelScript: ARGV prefix, id. Returns {json} of the removed item, or {}
// when it is not pending (claimed items are not: they left the due index).
var cancelScript = redis.NewScript(luaPrelude + `
local id = ARGV[2]
if redis.call('ZREM', DUE, id) == 0 then return {} end
local json = redis.call('HGET', ITEMS, id)
redis.call('DEL', trigger(id))
forget(id)
if not json then return {} end
return {json}
`)

// claimScript: ARGV prefix, token, lease ms, limit, ids... With ids, the
// bound is the latest due time among those still pending; without, now.
// Either way only items strictly past due (the rule Redis expires keys by)
// are taken, earliest first. Returns id, json, due for each claimed item.
var claimScript = redis.NewScript(luaPrelude + `
local token, lease, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = nowms()
local bound = now - 1
if #ARGV > 4 then
  local latest
  for i = 5, #ARGV do
    local s = redis.call('ZSCORE', DUE, ARGV[i])
    if s then
      s = tonumber(s)
      if not latest or s > latest then latest = s end
    end
  end
  if not latest then return {} end
  if latest < bound then bound = latest end
end
local due = redis.call('ZRANGEBYSCORE', DUE, '-inf', bound, 'WITHSCORES', 'LIMIT', 0, limit)
local out = {}
for i = 1, #due, 2 do
  local id, at = due[i], due[i + 1]
  redis.call('ZREM', DUE, id)
  redis.call('DEL', trigger(id))
  local json = redis.call('HGET', ITEMS, id)
  if json then
    redis.call('ZADD', INFLIGHT, now + lease, id)
    redis.call('HSET', CLAIMS, id, token .. '|' .. at)
    out[#out + 1] = id
    out[#out + 1] = json
    out[#out + 1] = at
  end
end
return out
`)

// ackScript: ARGV prefix, then id, token pairs. Deletes the fired items
// their claims still hold; returns the ids no longer held.
var ackScript = redis.NewScript(luaPrelude + `
local lost = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if holds(id, token) then
    redis.call('ZREM', INFLIGHT, id)
    redis.call('HDEL', CLAIMS, id)
    forget(id)
  else
    lost[#lost + 1] = id
  end
end
return lost
`)

// releaseScript: ARGV prefix, id, token, at ms. Makes a claimed item pending
// again, due at at; returns 0 when the claim no longer holds it.
var releaseScript = redis.NewScript(luaPrelude + `
local id, token = ARGV[2], ARGV[3]
if not holds(id, token) then return 0 end
redis.call('ZREM', INFLIGHT, id)
redis.call('HDEL', CLAIMS, id)
arm(id, tonumber(ARGV[4]), nowms())
return 1
`)

// passScript: ARGV prefix, from ms (or -inf), local now ms, check stale
// (1 or 0), overdue grace ms, limit. Touches the trigger of every item due
// in [from, now) (EXISTS on an expired key makes Redis delete it and
// publish "expired"); with check stale, lists items due before now - grace
// whose trigger is gone; puts back items whose lease has run out, due as
// they were. Returns {touched, still alive, resume from, oldest due, next
// due, next lease end, reclaimed ids, stale ids}.
var passScript = redis.NewScript(luaPrelude + `
local now, grace, limit = tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])
local due = redis.call('ZRANGEBYSCORE', DUE, ARGV[2], '(' .. ARGV[3], 'WITHSCORES', 'LIMIT', 0, limit)
local alive, resume = 0, ARGV[3]
for i = 1, #due, 2 do
  if redis.call('EXISTS', trigger(due[i])) == 1 then
    if alive == 0 then resume = due[i + 1] end
    alive = alive + 1
  end
end
if alive == 0 and #due / 2 >= limit then resume = due[#due] end
local stale = {}
if ARGV[4] == '1' then
  local old = redis.call('ZRANGEBYSCORE', DUE, '-inf', '(' .. (now - grace), 'LIMIT', 0, limit)
  for _, id in ipairs(old) do
    if redis.call('EXISTS', trigger(id)) == 0 then stale[#stale + 1] = id end
  end
end
local rnow = nowms()
local expired = redis.call('ZRANGEBYSCORE', INFLIGHT, '-inf', '(' .. rnow, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  local c = redis.call('HGET', CLAIMS, id)
  local at = c and tonumber(string.match(c, '|(%d+)$')) or (rnow - 1)
  redis.call('ZREM', INFLIGHT, id)
  redis.call('HDEL', CLAIMS, id)
  arm(id, at, rnow)
end
local oldest = redis.call('ZRANGE', DUE, 0, 0, 'WITHSCORES')
local nd = redis.call('ZRANGEBYSCORE', DUE, ARGV[3], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local nl = redis.call('ZRANGE', INFLIGHT, 0, 0, 'WITHSCORES')
return {#due / 2, alive, resume, oldest[2] or '', nd[2] or '', nl[2] or '', expired, stale}
`)
