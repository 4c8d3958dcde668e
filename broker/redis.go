package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"notification-service/internal/redisconn"
	"notification-service/store"
)

// The Redis bus serves any number of instances sharing one Redis
// (docs/ARCHITECTURE.md#redis-mode-keys-and-scripts).
//
// Publishing is one Lua script: it assigns the sequence numbers (bus:seq),
// stores each notification (the inbox's own Lua for user-addressed ones, the
// channel histories for broadcasts), encodes its frame with the cursor and
// appends it to the feed, a Redis stream whose entry ids are the sequence
// numbers. Every instance reads the feed with a blocking XREAD and hands each
// entry to its own hub, so all instances deliver the same notifications in
// the same order, and nothing is delivered before it is stored.
//
// A stream rather than pub/sub: XREAD resumes from the last id it saw, so an
// instance that loses its connection for a moment delivers what was
// published meanwhile instead of dropping it, and a reader that falls behind
// is never disconnected by Redis's pub/sub output limit. The feed is capped
// (feedMaxLen); an instance cut off for longer than the feed keeps ends its
// connections so their clients resume from their cursors through Replay,
// which reads the durable inbox and histories.
//
// Keys, under the prefix:
//
//	bus:epoch           the lifetime of this Redis's data: a new one when the data is lost
//	bus:seq             the last sequence number handed out
//	bus:feed            the stream every instance reads; id <seq>-0 for a notification,
//	                    <seq>-N for a control frame published after seq; fields
//	                    k (n: notification, u: control frame), i (id), u (user id),
//	                    c (channels, each "<byte length>:<name>"), r (cursor),
//	                    t (publish time, µs), f (the frame's JSON)
//	history:{<ch>}      a channel's recent broadcasts: ZSET, score seq, member "<ms> <json>"
//	history:{<ch>}:meta trimmed (highest seq dropped by retention), last (newest seq appended)
//	bus:control         pub/sub: requests to the instance that holds a connection
//	bus:reply:<id>      pub/sub: that instance's answers to one requester
//
// Channel names cannot hold '{' or '}', so no two channels' keys collide.
// Keys are computed inside the scripts, so the bus needs a standalone Redis
// (or one shard), not a cluster.
//
// The bus is spread over files by idea: this one holds the type, its
// options and the calls that write (Publish, NotifyUser) or report (Head,
// Check, Run); redis_feed.go the feed reader and its recovery;
// redis_replay.go Replay; redis_route.go subscribe and unsubscribe routed to
// the instance holding a connection; lua.go and lua/ the scripts.

// feedMaxLen caps the feed (approximately, as XADD MAXLEN ~ does). It only
// needs to cover an instance's short disconnections and stalls: a reader
// that falls further behind finds a gap and has its connections resume
// from their cursors. At 300 bytes an entry it holds about 6 MB (at the
// largest body allowed, 64 KiB, about 1.3 GB: trim bodies, not this).
const feedMaxLen = 20_000

// publishOnce is how long the bus remembers a published notification id.
// A publish whose answer was lost (a timeout, a reset after the script
// ran) fails with store.ErrUnavailable although it may have happened;
// running it again with the same ids within this time returns the first
// run's sequence numbers instead of publishing twice. Scheduled items retry with
// their own id, and requests with an Idempotency-Key get an id derived from
// the key, so both retry safely.
const publishOnce = 10 * time.Minute

// controlTimeout bounds how long a subscribe routed to another instance
// waits for the owner's answer.
const controlTimeout = 3 * time.Second

// ScriptedLog is a UserLog kept in the bus's own Redis. AppendLua returns a
// Lua chunk defining
//
//	local function inbox_append(user_id, id, seq, notification_json, now_ms)
//
// which stores one notification exactly as Append would. The publish script
// (lua/publish.lua) runs it, so the inbox write, the sequence number and the
// feed entry are one atomic step. inbox.Redis satisfies it.
//
// The contract is held by TestRedisBusPublishStoresWhatAppendStores
// (broker/redis_test.go): what the publish script stores through the chunk
// reads back, through the inbox's own List and Since, exactly as what
// Append stores for the same notifications.
type ScriptedLog interface {
	UserLog
	AppendLua() string
}

// RedisOptions configure a Redis bus.
type RedisOptions struct {
	Prefix  redisconn.Prefix
	History HistoryLimits
	// Delivered observes each notification this instance delivered; nil
	// means nothing does.
	Delivered DeliveryFunc
	Logger    *slog.Logger
	// OnError is called for each Redis command of the bus that failed
	// (metrics); nil means nobody is told.
	OnError func()
	// OnReconnect is called when the feed reader reads again after
	// failing: Redis is back (metrics); nil means nobody is told.
	OnReconnect func()
}

// Redis is the bus of a service spread over several instances.
type Redis struct {
	client       *redis.Client
	readerClient *redis.Client // the feed reader's own (see NewRedis)
	hub          *Hub
	log          ScriptedLog
	keys         redisconn.Prefix
	limits       HistoryLimits
	delivered    DeliveryFunc
	logger       *slog.Logger
	hooks        redisconn.Hooks
	instance     string

	// publish is publishLua behind the inbox's chunk (ScriptedLog).
	publish *redis.Script

	// ready is closed once Run has read the feed's position; Head and
	// Replay wait for it.
	ready     chan struct{}
	readyOnce sync.Once

	// mu orders local delivery against Replay and Head: the reader holds
	// it while it hands one batch of feed entries to the hub, so a
	// connection's channels and the head read together under it split the
	// notifications exactly into "replayed" and "delivered live".
	mu     sync.Mutex
	epoch  string
	head   uint64 // the newest sequence number delivered here
	headID string // the id of the notification at head, "" if unknown
	feedID string // the last feed entry read
	// advanced is closed, and replaced, whenever head moves.
	advanced chan struct{}

	// epochChanged wakes the reader when a publish saw an epoch other
	// than the one it reads: Redis lost its data, and go-redis's retry
	// may have hidden the reconnection from the reader's XREAD.
	epochChanged chan struct{}

	// healthMu guards the reader's view of Redis, for Check.
	healthMu sync.Mutex
	readErr  error

	pendingMu sync.Mutex
	pending   map[string]chan controlReply
	listening bool // the control subscription is live
}

var _ Bus = (*Redis)(nil)

// NewRedis returns a bus on client delivering to hub and storing
// user-addressed notifications through log. It delivers nothing until Run
// is called.
func NewRedis(client *redis.Client, hub *Hub, log ScriptedLog, opts RedisOptions) *Redis {
	if opts.Delivered == nil {
		opts.Delivered = func(Notification, int) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// The feed reader's client never retries a command by itself: a Redis
	// that restarted must show up to the reader as an error, so that it
	// resyncs (and its connection's CLIENT ID stays the one shutdown
	// unblocks). Its options are copied here, before anything uses the
	// client: go-redis writes to them while it opens connections.
	readerOpts := *client.Options()
	readerOpts.MaxRetries = -1
	readerOpts.PoolSize = 1
	// The copied options still point at the first client's maintenance
	// notification handler; a second client must not register over it.
	readerOpts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	b := &Redis{
		client:       client,
		readerClient: redis.NewClient(&readerOpts),
		hub:          hub,
		log:          log,
		keys:         opts.Prefix,
		limits:       opts.History,
		delivered:    opts.Delivered,
		logger:       opts.Logger,
		hooks:        redisconn.Hooks{OnError: opts.OnError, OnReconnect: opts.OnReconnect},
		instance:     redisconn.RandomHex(8),
		publish:      redis.NewScript(log.AppendLua() + "\n" + publishLua),
		ready:        make(chan struct{}),
		advanced:     make(chan struct{}),
		epochChanged: make(chan struct{}, 1),
		pending:      make(map[string]chan controlReply),
	}
	return b
}

// Publish implements Bus.
func (b *Redis) Publish(ctx context.Context, ns ...Notification) ([]Notification, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	published := time.Now()
	args := []any{string(b.keys), newEpoch(), Now().UnixMilli(), b.limits.MaxPerChannel, b.limits.MaxAge.Milliseconds(), feedMaxLen, len(ns),
		published.UnixMicro(), publishOnce.Milliseconds()}
	for _, n := range ns {
		body, err := json.Marshal(n)
		if err != nil {
			return nil, fmt.Errorf("broker: encode notification %s: %w", n.ID, err)
		}
		args = append(args, n.UserID, n.ID, n.Exclude, body, len(n.Channels))
		for _, ch := range n.Channels {
			args = append(args, ch)
		}
	}
	res, err := b.publish.Run(ctx, b.client, nil, args...).Slice()
	if err != nil {
		return nil, b.hooks.Wrap("broker: publish", err)
	}
	first, err := asUint(res[1])
	if err != nil {
		return nil, fmt.Errorf("broker: publish: sequence: %w", err)
	}
	b.mu.Lock()
	stale := b.epoch != "" && res[0] != b.epoch
	b.mu.Unlock()
	if stale {
		select {
		case b.epochChanged <- struct{}{}:
		default:
		}
	}
	out := slices.Clone(ns)
	for i := range out {
		out[i].Seq = first + uint64(i)
	}
	return out, nil
}

func asUint(v any) (uint64, error) {
	switch v := v.(type) {
	case int64:
		return uint64(v), nil
	case string:
		return strconv.ParseUint(v, 10, 64)
	}
	return 0, fmt.Errorf("unexpected %T %v", v, v)
}

// Head implements Bus. It is the newest sequence number in Redis once this
// instance has delivered through it, so everything after it reaches a
// connection registered now live. With Redis away it is where local
// delivery stands, which is just as safe: Replay fills the difference.
func (b *Redis) Head(ctx context.Context) (Cursor, error) {
	if err := b.waitReady(ctx); err != nil {
		return Cursor{}, err
	}
	seq, err := b.client.Get(ctx, b.keys.Key("bus", "seq")).Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return Cursor{Epoch: b.epoch, Seq: b.head}, nil
	}
	return b.deliveredThrough(ctx, seq)
}

// deliveredThrough waits until local delivery has reached seq (or a resync
// has moved past it) and returns where it stands.
func (b *Redis) deliveredThrough(ctx context.Context, seq uint64) (Cursor, error) {
	wait := time.NewTimer(controlTimeout)
	defer wait.Stop()
	for {
		b.mu.Lock()
		if b.head >= seq {
			c := Cursor{Epoch: b.epoch, Seq: b.head}
			b.mu.Unlock()
			return c, nil
		}
		advanced := b.advanced
		b.mu.Unlock()
		select {
		case <-advanced:
		case <-wait.C:
			// The reader is stuck (Redis just went away): local delivery
			// is still a safe head.
			b.mu.Lock()
			defer b.mu.Unlock()
			return Cursor{Epoch: b.epoch, Seq: b.head}, nil
		case <-ctx.Done():
			return Cursor{}, fmt.Errorf("broker: head: %w", ctx.Err())
		}
	}
}

func (b *Redis) waitReady(ctx context.Context) error {
	select {
	case <-b.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: waiting for the feed: %w", ctx.Err())
	}
}

// NotifyUser implements Bus: the frame travels on the feed, so it reaches
// the user's connections on every instance in order with notifications.
func (b *Redis) NotifyUser(ctx context.Context, userID string, f *Frame) error {
	keys := []string{b.keys.Key("bus", "seq"), b.keys.Key("bus", "feed")}
	if err := notifyScript.Run(ctx, b.client, keys, feedMaxLen, "u", userID, f.JSON).Err(); err != nil {
		return b.hooks.Wrap("broker: notify user "+userID, err)
	}
	return nil
}

// NotifyChannel implements Bus: the frame travels on the feed, with its
// event, the transport it is for and the connection it skips.
func (b *Redis) NotifyChannel(ctx context.Context, channel string, f *Frame, except string) error {
	keys := []string{b.keys.Key("bus", "seq"), b.keys.Key("bus", "feed")}
	if err := notifyScript.Run(ctx, b.client, keys, feedMaxLen, "c", channel, f.JSON, f.Event, f.Only, except).Err(); err != nil {
		return b.hooks.Wrap("broker: notify channel "+channel, err)
	}
	return nil
}

// Check reports whether this instance can serve: Redis answers, the feed
// reader is reading and routed subscribes can be answered. /health turns an error into "degraded".
func (b *Redis) Check(ctx context.Context) error {
	select {
	case <-b.ready:
	default:
		return fmt.Errorf("broker: feed not read yet: %w", store.ErrUnavailable)
	}
	b.healthMu.Lock()
	readErr := b.readErr
	b.healthMu.Unlock()
	if readErr != nil {
		return readErr
	}
	b.pendingMu.Lock()
	listening := b.listening
	b.pendingMu.Unlock()
	if !listening {
		// Not yet able to route a subscribe to another instance.
		return fmt.Errorf("broker: control channel not subscribed yet: %w", store.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return b.hooks.Wrap("broker: ping", b.client.Ping(ctx).Err())
}

// Run reads the feed and the control channel until ctx ends, delivering to
// the hub. It retries with backoff while Redis is away and, when it comes
// back, continues where it stopped. It returns nil when ctx ends.
func (b *Redis) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { b.listenControl(ctx) })
	defer wg.Wait()
	b.readFeed(ctx)
	return nil
}
