package presence

// The Redis store keeps every presence channel in Redis, so instances behind
// one load balancer agree on who is present: a user with one tab on each of
// two instances is one member, added when the first tab joins and removed
// when the last leaves, whichever instance sees it.
//
// Keys, under the prefix (the channel between braces, each key ending in a
// fixed suffix, so no channel name reaches another's keys):
//
//	<prefix>presence:{<channel>}:conns   HASH  connection id -> "<instance> <user id>"
//	<prefix>presence:{<channel>}:users   HASH  user id -> its connections in the channel
//	<prefix>presence:{<channel>}:info    HASH  user id -> user_info JSON ("" for none)
//	<prefix>presence:instance:{<id>}:conns ZSET the instance's connections, as
//	                                     "<len(channel)>:<channel><connection id>"
//	<prefix>presence:instances           ZSET  instance id -> deadline (Unix ms)
//
// A channel's keys vanish with its last connection; an instance's index with
// its last connection; an instance's entry in presence:instances when it is
// swept (below) or stops. Channel names may hold any character; connection
// ids too. The scripts name keys from the prefix rather than taking KEYS
// (a sweep touches many channels), so Redis is one server or one primary,
// not a Cluster, as for the rest of the service. Every command in them
// exists in Redis 6.0.
//
// Instances and their death. Each store has an instance id (random, new for
// every store). Run renews the instance's deadline every Heartbeat to
// Redis's clock + Lapse, and sweeps: one script removes, a batch at a time,
// the connections of instances whose deadline has passed, and returns each
// user whose last connection went, so exactly one sweeper, on one instance,
// reports each removal. An instance killed with SIGKILL renewed at most
// Heartbeat before it died, and the survivors sweep every Heartbeat, so its
// members are removed and reported at most Lapse + Heartbeat after the kill
// (20 s by default), plus a script's run.
//
// An instance that could not renew in time (Redis out of its reach for
// longer than Lapse, a stall, Redis restarted empty) may have been swept
// while its connections were still open. It must not go on recording under
// an id others treat as dead: the heartbeat and Join scripts refuse an id
// whose deadline has passed, and the store then takes a new id (a new
// generation) and tells Run's caller through Events.Lapsed, so the
// transport joins its open subscriptions again.
//
// A Leave that could not reach Redis is kept and sent again by Run every
// Heartbeat until Redis answers (redis_leaves.go): otherwise a connection
// closed during a short outage, too short to lapse the instance, would
// stay a member for as long as the instance lives.
//
// One gap is left, as for any command whose answer is lost: a script that
// ran but whose reply never arrived (a timeout, a connection cut after
// Redis answered; the client does not retry) returns an error, and what it
// would have reported nobody reports. A Leave repeated then answers "" and
// false (the caller, who knows the connection's user, can ask Members
// whether the user is gone); a sweep's removals are not found by the next
// sweep. Other subscribers then show a stale member until they subscribe
// again.

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// Defaults of RedisOptions.
const (
	DefaultHeartbeat = 5 * time.Second
	DefaultLapse     = 15 * time.Second
)

// RedisOptions configure a Redis store.
type RedisOptions struct {
	// Prefix starts every key.
	Prefix redisconn.Prefix
	// MaxMembers bounds the members of one channel; 0 or less means
	// DefaultMaxMembers.
	MaxMembers int
	// Heartbeat is how often Run renews this instance's deadline and
	// sweeps dead instances; 0 or less means DefaultHeartbeat.
	Heartbeat time.Duration
	// Lapse is how long after its last renewal an instance counts as dead;
	// 0 or less means DefaultLapse. It is raised to 2×Heartbeat if below,
	// so one slow renewal does not kill a live instance. Every instance on
	// one Redis should use the same values.
	Lapse time.Duration
	// Logger gets sweeps and Redis trouble seen by Run; nil discards them.
	Logger *slog.Logger
}

// Redis is the Store of the distributed mode, shared by every instance.
type Redis struct {
	client     *redis.Client
	prefix     redisconn.Prefix
	maxMembers int
	heartbeat  time.Duration
	lapse      time.Duration
	logger     *slog.Logger
	sweepBatch int // defaultSweepBatch; tests lower it

	gen atomic.Pointer[generation]
	// told is the generation Run's caller knows of: the first, until Run
	// calls Events.Lapsed. Only Run touches it.
	told *generation
	// leaves are the Leaves that could not reach Redis, which Run sends
	// again (redis_leaves.go).
	leaves pendingLeaves
}

var _ Store = (*Redis)(nil)

// generation is one instance id of the store: a new one replaces it when
// Redis says it lapsed.
type generation struct {
	id string
	// known is set once a script accepted the id: from then on, its
	// absence from presence:instances means it was swept, never that it
	// is new.
	known atomic.Bool
}

func newGeneration() *generation { return &generation{id: redisconn.RandomHex(8)} }

// mayBeNew is the scripts' argument saying whether the id may be unknown to
// Redis without having lapsed.
func (g *generation) mayBeNew() string {
	if g.known.Load() {
		return "0"
	}
	return "1"
}

// NewRedis returns a store keeping channels in the Redis behind client.
func NewRedis(client *redis.Client, opts RedisOptions) *Redis {
	r := &Redis{
		client:     client,
		prefix:     opts.Prefix,
		maxMembers: opts.MaxMembers,
		heartbeat:  opts.Heartbeat,
		lapse:      opts.Lapse,
		logger:     opts.Logger,
		sweepBatch: defaultSweepBatch,
	}
	if r.maxMembers <= 0 {
		r.maxMembers = DefaultMaxMembers
	}
	if r.heartbeat <= 0 {
		r.heartbeat = DefaultHeartbeat
	}
	if r.lapse <= 0 {
		r.lapse = DefaultLapse
	}
	r.lapse = max(r.lapse, 2*r.heartbeat)
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	r.told = newGeneration()
	r.gen.Store(r.told)
	return r
}

// Join replies of join.lua.
const (
	joinOK = iota
	joinFull
	joinLapsed
	joinConnInUse
)

// Join implements Store.
func (r *Redis) Join(ctx context.Context, channel, connID string, m Member) ([]Member, bool, error) {
	if err := checkJoin(channel, connID, m); err != nil {
		return nil, false, err
	}
	r.forgetLeave(channel, connID) // subscribed again: a late Leave would remove it
	op := fmt.Sprintf("presence: join %s as %s for user %s", channel, connID, m.UserID)
	for attempt := 0; ; attempt++ {
		g := r.gen.Load()
		reply, err := joinScript.Run(ctx, r.client, nil, string(r.prefix), channel, connID, g.id,
			r.lapse.Milliseconds(), g.mayBeNew(), m.UserID, []byte(m.Info), r.maxMembers).Slice()
		if err != nil {
			return nil, false, redisconn.Wrap(op, err)
		}
		status, _ := reply[0].(int64)
		if status != joinLapsed {
			g.known.Store(true)
		}
		switch status {
		case joinOK:
			added, _ := reply[1].(int64)
			return decodeMembers(reply[2:]), added == 1, nil
		case joinFull:
			return nil, false, fmt.Errorf("%s: %w", op, ErrFull)
		case joinConnInUse:
			return nil, false, fmt.Errorf("%s: %w", op, ErrConnInUse)
		case joinLapsed:
			// A fresh id is always accepted, so one retry is enough.
			r.replace(g)
			if attempt == 0 {
				continue
			}
		}
		return nil, false, fmt.Errorf("%s: unexpected reply %v", op, reply)
	}
}

// Leave implements Store.
func (r *Redis) Leave(ctx context.Context, channel, connID string) (string, bool, error) {
	if err := checkLeave(channel, connID); err != nil {
		return "", false, err
	}
	user, removed, err := r.leave(ctx, channel, connID)
	if err != nil {
		r.keepLeave(channel, connID, err) // Run sends it again
	}
	return user, removed, err
}

// leave runs leave.lua.
func (r *Redis) leave(ctx context.Context, channel, connID string) (string, bool, error) {
	reply, err := leaveScript.Run(ctx, r.client, nil, string(r.prefix), channel, connID).Slice()
	if err != nil {
		return "", false, redisconn.Wrap(fmt.Sprintf("presence: leave %s as %s", channel, connID), err)
	}
	user, _ := reply[0].(string)
	last, _ := reply[1].(int64)
	return user, last == 1, nil
}

// Members implements Store.
func (r *Redis) Members(ctx context.Context, channel string) ([]Member, error) {
	all, err := r.client.HGetAll(ctx, r.channelKey(channel, "info")).Result()
	if err != nil {
		return nil, redisconn.Wrap("presence: members of "+channel, err)
	}
	ms := make([]Member, 0, len(all))
	for user, info := range all {
		ms = append(ms, member(user, info))
	}
	sortMembers(ms)
	return ms, nil
}

// decodeMembers reads the user id and info pairs of a script's reply.
func decodeMembers(pairs []any) []Member {
	ms := make([]Member, 0, len(pairs)/2)
	for k := 0; k+1 < len(pairs); k += 2 {
		user, _ := pairs[k].(string)
		info, _ := pairs[k+1].(string)
		ms = append(ms, member(user, info))
	}
	sortMembers(ms)
	return ms
}

func member(user, info string) Member {
	m := Member{UserID: user}
	if info != "" {
		m.Info = []byte(info)
	}
	return m
}

// replace gives the store a new generation in place of g, unless another
// call already has.
func (r *Redis) replace(g *generation) {
	next := newGeneration()
	if r.gen.CompareAndSwap(g, next) {
		r.logger.LogAttrs(context.Background(), slog.LevelWarn,
			"presence: this instance was taken for dead (its heartbeat lapsed); continuing under a new id",
			slog.String("old_instance", g.id), slog.String("instance", next.id))
	}
}

func (r *Redis) channelKey(channel, suffix string) string {
	return r.prefix.Key("presence", "{"+channel+"}", suffix)
}

func (r *Redis) instancesKey() string { return r.prefix.Key("presence", "instances") }

func (r *Redis) instanceKey(id string) string {
	return r.prefix.Key("presence", "instance", "{"+id+"}", "conns")
}

func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
