package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// Redis is a Scheduler whose items live in Redis, shared by every instance
// of the service (docs/ARCHITECTURE.md#redis-mode-keys-and-scripts). Any
// instance can add, list or cancel any item, and items survive restarts of
// the service.
//
// Keys, under the prefix p:
//
//	p sched:items           HASH   id → item JSON (pending and in flight)
//	p sched:at              ZSET   the same ids by ScheduledAt (ms): the unfiltered listing's index
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
// Bounds and listing. Add checks Limits and stores the item in one script:
// the total bound counts sched:items, a user's bound the user's index, both
// holding items in flight too. A listing reads a page from sched:at or the
// user's index, whose order (score, then member) is the listing order,
// starting by rank after the cursor; sched:due cannot serve, as a retry
// scores an item by its retry time.
//
// Redis must publish keyevent notifications for expired keys
// (notify-keyspace-events with "Ex"): Prepare checks and adds them, and Run
// adds them again after each reconnect, since a restarted Redis may have
// forgotten a CONFIG SET. The scripts derive their keys from the prefix, so
// Redis is one standalone server (or one primary), not a Cluster. Every
// command and option they and this package send is in Redis 6.0 (a trigger
// expires by PEXPIREAT, not SET … PXAT): TestRedis records what the
// contract runs and checks it against Redis's own COMMAND DOCS.
//
// The scheduler is spread over files by idea: this one holds the type, its
// options and tunables; redis_config.go makes sure Redis publishes expiry
// events (Prepare); redis_items.go adds, reads and cancels items;
// redis_list.go lists them;
// redis_run.go is Run, its event reader and its timer; redis_fire.go claims,
// fires, acks and puts back; lua.go and lua/ hold the scripts.
type Redis struct {
	client *redis.Client
	prefix redisconn.Prefix
	limits Limits
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

// RedisOptions configure a Redis scheduler.
type RedisOptions struct {
	// Prefix starts every key and channel.
	Prefix redisconn.Prefix
	// Limits bound the items held, by all instances together.
	Limits Limits
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

var _ Scheduler = (*Redis)(nil)

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
		limits:         opts.Limits,
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
