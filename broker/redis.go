package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"notification-service/internal/redisconn"
	"notification-service/store"
)

// The Redis bus serves any number of instances sharing one Redis (DESIGN §6).
//
// Publishing is one Lua script: it assigns the sequence numbers (INCRBY),
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
//	                    <seq>-N for a control frame published after seq
//	history:{<ch>}      a channel's recent broadcasts: ZSET, score seq, member "<ms> <json>"
//	history:{<ch>}:meta trimmed (highest seq dropped by retention), last (newest seq appended)
//	bus:control         pub/sub: requests to the instance that holds a connection
//	bus:reply:<id>      pub/sub: that instance's answers to one requester
//
// Channel names cannot hold '{' or '}', so no two channels' keys collide.
// Keys are computed inside the scripts, so the bus needs a standalone Redis
// (or one shard), not a cluster.

// feedMaxLen caps the feed (approximately, as XADD MAXLEN ~ does). It only
// needs to cover an instance's short disconnections and stalls: a reader
// that falls further behind finds a gap and has its connections resume
// from their cursors. At 300 bytes an entry it holds about 6 MB (at the
// largest body allowed, 64 KiB, about 1.3 GB: trim bodies, not this).
const feedMaxLen = 20_000

// publishOnce is how long the bus remembers a published notification id.
// A publish whose answer was lost (a timeout, a reset after the script
// ran) fails with ErrUnavailable although it may have happened; running it
// again with the same ids within this time returns the first run's
// sequence numbers instead of publishing twice. Scheduled items retry with
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
// runs it, so the inbox write, the sequence number and the feed entry are
// one atomic step. inbox.Redis satisfies it.
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

	publish *redis.Script
	control *redis.Script
	sync    *redis.Script
	replay  *redis.Script

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
		control:      redis.NewScript(controlLua),
		sync:         redis.NewScript(syncLua),
		replay:       redis.NewScript(replayLua),
		ready:        make(chan struct{}),
		advanced:     make(chan struct{}),
		epochChanged: make(chan struct{}, 1),
		pending:      make(map[string]chan controlReply),
	}
	return b
}

// publishLua runs after the inbox's chunk. ARGV: prefix, epoch candidate,
// now (ms), history max per channel, history max age (ms), feed max
// length, count, publish time (µs, the publisher's clock: the start of the
// delivery latency every instance measures), how long (ms) to remember the
// first notification's id against a second run, then per notification:
// user id, id, JSON, channel count, channels.
//
// Sequence numbers are read, not incremented, until every store has
// succeeded: a script that fails half-way keeps the writes it made, and an
// inbox that refuses the first notification must leave bus:seq untouched.
const publishLua = `
local prefix = ARGV[1]
local epoch_key = prefix .. 'bus:epoch'
local epoch = redis.call('GET', epoch_key)
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', epoch_key, epoch)
end
local now = tonumber(ARGV[3])
local max_per_channel = tonumber(ARGV[4])
local max_age = tonumber(ARGV[5])
local feed_max = ARGV[6]
local count = tonumber(ARGV[7])
local published = ARGV[8]
local once_ttl = tonumber(ARGV[9])
local seq = tonumber(redis.call('GET', prefix .. 'bus:seq') or '0')
local first = seq + 1

-- Lua 5.1 writes a number from 10^14 up as 1e+14 when it is concatenated:
-- format sequence numbers and times explicitly.
local function num(n) return string.format('%.0f', n) end

-- A notification id published a moment ago is the retry of a publish whose
-- answer was lost (a timeout, a reset): answer what the first run did.
local once_key = prefix .. 'bus:once:{' .. ARGV[11] .. '}'
if once_ttl > 0 then
  local done = redis.call('GET', once_key)
  if done then return {epoch, done, 1} end
end

local function history_append(ch, seq, body)
  local key = prefix .. 'history:{' .. ch .. '}'
  local meta = key .. ':meta'
  redis.call('ZADD', key, seq, num(now) .. ' ' .. body)
  redis.call('HSET', meta, 'last', seq)
  local trimmed = nil
  if max_per_channel > 0 then
    local excess = redis.call('ZCARD', key) - max_per_channel
    if excess > 0 then
      local dropped = redis.call('ZRANGE', key, excess - 1, excess - 1, 'WITHSCORES')
      trimmed = tonumber(dropped[2])
      redis.call('ZREMRANGEBYRANK', key, 0, excess - 1)
    end
  end
  if max_age > 0 then
    while true do
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      if #oldest == 0 then break end
      local at = tonumber(string.match(oldest[1], '^(%d+) '))
      if at >= now - max_age then break end
      trimmed = math.max(trimmed or 0, tonumber(oldest[2]))
      redis.call('ZREMRANGEBYRANK', key, 0, 0)
    end
    -- A channel nobody broadcasts on any more disappears with its
    -- entries. Its meta stays (a few dozen bytes per channel ever used),
    -- so a cursor from before can still be told it is too old.
    redis.call('PEXPIRE', key, max_age)
  end
  if trimmed then
    local old = tonumber(redis.call('HGET', meta, 'trimmed') or '0')
    if trimmed > old then redis.call('HSET', meta, 'trimmed', trimmed) end
  end
end

local i = 10
for k = 0, count - 1 do
  local s = first + k
  local user, id, body, nch = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local channels = {}
  for c = 1, nch do channels[c] = ARGV[i + 3 + c] end
  i = i + 4 + nch
  if user ~= '' then
    inbox_append(user, id, s, body, now)
  else
    for _, ch in ipairs(channels) do history_append(ch, s, body) end
  end
  local cursor = epoch .. '-' .. num(s)
  local frame = '{"event":"notification","cursor":"' .. cursor .. '",' .. string.sub(body, 2)
  redis.call('XADD', prefix .. 'bus:feed', 'MAXLEN', '~', feed_max, num(s) .. '-0',
    'k', 'n', 'i', id, 'u', user, 'c', table.concat(channels, ','), 'r', cursor, 't', published, 'f', frame)
end
redis.call('SET', prefix .. 'bus:seq', first + count - 1)
if once_ttl > 0 then redis.call('SET', once_key, num(first), 'PX', once_ttl) end
return {epoch, first, 0}
`

// controlLua appends a control frame for a user's connections to the feed,
// after the newest notification. KEYS: seq, feed. ARGV: feed max length,
// user id, frame.
const controlLua = `
local seq = redis.call('GET', KEYS[1]) or '0'
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-*', 'k', 'u', 'u', ARGV[2], 'f', ARGV[3])
`

// syncLua reads where the feed stands, as one step. KEYS: epoch, seq, feed.
// ARGV: epoch candidate, used when the data has none (first start, or
// Redis lost it).
const syncLua = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local seq = redis.call('GET', KEYS[2]) or '0'
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
return {epoch, seq, id}
`

// replayLua reads the broadcasts of channels with after < seq <= head, as
// one step with their retention marks. KEYS: epoch. ARGV: prefix, after,
// head, channels... It answers the epoch, then per channel: the highest
// sequence number that is gone (trimmed, or every entry if the history has
// expired whole), then the entries "<ms> <json>" with their scores.
const replayLua = `
local out = {redis.call('GET', KEYS[1]) or ''}
local prefix, after, head = ARGV[1], ARGV[2], ARGV[3]
for i = 4, #ARGV do
  local key = prefix .. 'history:{' .. ARGV[i] .. '}'
  local meta = redis.call('HMGET', key .. ':meta', 'trimmed', 'last')
  local gone = tonumber(meta[1] or '0')
  if redis.call('EXISTS', key) == 0 and meta[2] then
    gone = math.max(gone, tonumber(meta[2]))
  end
  table.insert(out, gone)
  table.insert(out, redis.call('ZRANGEBYSCORE', key, '(' .. after, head, 'WITHSCORES'))
end
return out
`

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
		args = append(args, n.UserID, n.ID, body, len(n.Channels))
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

// Replay implements Bus.
func (b *Redis) Replay(ctx context.Context, connID string, after Cursor) ([]*Frame, error) {
	// Catch local delivery up with Redis first, so the replay covers
	// everything published before the call, as on the memory bus.
	if _, err := b.Head(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	epoch, head := b.epoch, b.head
	// Read under the delivery lock: everything on these channels after
	// head reaches the connection live.
	conn, ok := b.hub.Connection(connID)
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("broker: replay for %s: %w", connID, ErrUnknownConnection)
	}
	if after.Epoch != epoch || after.Seq > head {
		return nil, fmt.Errorf("broker: replay after %s (head %s-%d): %w", after, epoch, head, ErrCursorExpired)
	}
	userID, channels := conn.UserID, conn.Channels

	var missed []Notification
	if len(channels) > 0 {
		args := []any{string(b.keys), after.Seq, head}
		for _, ch := range channels {
			args = append(args, ch)
		}
		res, err := b.replay.Run(ctx, b.client, []string{b.keys.Key("bus", "epoch")}, args...).Slice()
		if err != nil {
			return nil, b.hooks.Wrap("broker: replay histories", err)
		}
		if res[0] != epoch {
			return nil, fmt.Errorf("broker: replay after %s: Redis holds epoch %v: %w", after, res[0], ErrCursorExpired)
		}
		for i, ch := range channels {
			gone, err := asUint(res[1+2*i])
			if err != nil {
				return nil, fmt.Errorf("broker: replay channel %s: %w", ch, err)
			}
			if after.Seq < gone {
				return nil, fmt.Errorf("broker: replay channel %s after %s (dropped through %d): %w", ch, after, gone, ErrCursorExpired)
			}
			entries, _ := res[2+2*i].([]any)
			for j := 0; j+1 < len(entries); j += 2 {
				n, err := decodeHistoryEntry(entries[j], entries[j+1])
				if err != nil {
					return nil, fmt.Errorf("broker: replay channel %s: %w", ch, err)
				}
				missed = append(missed, n)
			}
		}
	}

	own, err := b.log.Since(ctx, userID, after.Seq)
	if err != nil {
		return nil, fmt.Errorf("broker: replay inbox of %s after %s: %w", userID, after, err)
	}
	return replayFrames(missed, own, userID, channels, head, epoch)
}

func decodeHistoryEntry(member, score any) (Notification, error) {
	s, _ := member.(string)
	_, body, ok := strings.Cut(s, " ")
	if !ok {
		return Notification{}, fmt.Errorf("malformed history entry %.40q", s)
	}
	var n Notification
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		return Notification{}, fmt.Errorf("decode history entry: %w", err)
	}
	seq, err := asUint(score)
	if err != nil {
		return Notification{}, fmt.Errorf("history entry score: %w", err)
	}
	n.Seq = seq
	return n, nil
}

// NotifyUser implements Bus: the frame travels on the feed, so it reaches
// the user's connections on every instance in order with notifications.
func (b *Redis) NotifyUser(ctx context.Context, userID string, f *Frame) error {
	keys := []string{b.keys.Key("bus", "seq"), b.keys.Key("bus", "feed")}
	if err := b.control.Run(ctx, b.client, keys, feedMaxLen, userID, f.JSON).Err(); err != nil {
		return b.hooks.Wrap("broker: notify user "+userID, err)
	}
	return nil
}

// Subscribe implements Bus.
func (b *Redis) Subscribe(ctx context.Context, connID string, channels []string) (Subscription, error) {
	return b.changeChannels(ctx, connID, channels, true)
}

// Unsubscribe implements Bus.
func (b *Redis) Unsubscribe(ctx context.Context, connID string, channels []string) (Subscription, error) {
	return b.changeChannels(ctx, connID, channels, false)
}

type controlRequest struct {
	ID        string   `json:"id"`
	ReplyTo   string   `json:"reply_to"`
	Conn      string   `json:"conn"`
	Channels  []string `json:"channels"`
	Subscribe bool     `json:"subscribe"`
}

type controlReply struct {
	ID    string       `json:"id"`
	Found bool         `json:"found"`
	Error string       `json:"error,omitempty"` // "too_many_channels" or a message
	Sub   Subscription `json:"subscription"`
}

// changeChannels acts locally when the connection is here; otherwise it
// asks every instance over pub/sub and waits for the owner's answer, or for
// every instance to say it does not hold it. PUBLISH says how many
// instances listen, so "nobody has it" needs no timeout.
func (b *Redis) changeChannels(ctx context.Context, connID string, channels []string, subscribe bool) (Subscription, error) {
	if sub, err, local := b.changeLocal(connID, channels, subscribe); local {
		return sub, err
	}
	req := controlRequest{ID: redisconn.RandomHex(8), ReplyTo: b.instance, Conn: connID, Channels: channels, Subscribe: subscribe}
	replies := make(chan controlReply, 64)
	b.pendingMu.Lock()
	if !b.listening {
		b.pendingMu.Unlock()
		return Subscription{}, fmt.Errorf("broker: route subscribe for %s: control channel not subscribed: %w", connID, store.ErrUnavailable)
	}
	b.pending[req.ID] = replies
	b.pendingMu.Unlock()
	defer func() {
		b.pendingMu.Lock()
		delete(b.pending, req.ID)
		b.pendingMu.Unlock()
	}()

	body, _ := json.Marshal(req)
	listeners, err := b.client.Publish(ctx, b.keys.Key("bus", "control"), body).Result()
	if err != nil {
		return Subscription{}, b.hooks.Wrap("broker: route subscribe for "+connID, err)
	}
	others := int(listeners) - 1 // this instance ignores its own requests
	timeout := time.NewTimer(controlTimeout)
	defer timeout.Stop()
	for answered := 0; answered < others; answered++ {
		select {
		case r := <-replies:
			if !r.Found {
				continue
			}
			switch r.Error {
			case "":
				return r.Sub, nil
			case "too_many_channels":
				return Subscription{}, fmt.Errorf("broker: subscribe %s: %w", connID, ErrTooManyChannels)
			default:
				return Subscription{}, fmt.Errorf("broker: subscribe %s on another instance: %s", connID, r.Error)
			}
		case <-timeout.C:
			return Subscription{}, fmt.Errorf("broker: route subscribe for %s: %d of %d instances did not answer within %s: %w",
				connID, others-answered, others, controlTimeout, store.ErrUnavailable)
		case <-ctx.Done():
			return Subscription{}, fmt.Errorf("broker: route subscribe for %s: %w", connID, ctx.Err())
		}
	}
	// The connection may have arrived here while we asked.
	if sub, err, local := b.changeLocal(connID, channels, subscribe); local {
		return sub, err
	}
	return Subscription{}, fmt.Errorf("broker: subscribe %s: %w", connID, ErrUnknownConnection)
}

// changeLocal changes the channels of a connection held here; local is
// false when this instance does not hold it.
func (b *Redis) changeLocal(connID string, channels []string, subscribe bool) (sub Subscription, err error, local bool) {
	if subscribe {
		sub, err = b.hub.Subscribe(connID, channels)
	} else {
		sub, err = b.hub.Unsubscribe(connID, channels)
	}
	if errors.Is(err, ErrUnknownConnection) {
		return Subscription{}, nil, false
	}
	return sub, err, true
}

// Check reports whether this instance can serve: Redis answers and the feed
// reader is reading. /health turns an error into "degraded".
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

func (b *Redis) setReadErr(err error) {
	b.healthMu.Lock()
	defer b.healthMu.Unlock()
	if err != nil && b.readErr == nil {
		b.logger.Error("redis: feed unavailable; live delivery paused, sends answer 503", slog.Any("error", err))
	}
	if err == nil && b.readErr != nil {
		b.logger.Info("redis: feed available again")
		b.hooks.Reconnected()
	}
	b.readErr = err
}

// resync reads where the feed stands. On the first call it sets the start;
// later (after an outage) it decides whether reading on from feedID is
// still exact: if Redis lost its data (a new epoch) or trimmed entries this
// instance never read, local connections are ended so their clients resume
// through Replay.
func (b *Redis) resync(ctx context.Context) error {
	keys := []string{b.keys.Key("bus", "epoch"), b.keys.Key("bus", "seq"), b.keys.Key("bus", "feed")}
	res, err := b.sync.Run(ctx, b.client, keys, newEpoch()).StringSlice()
	if err != nil {
		return b.hooks.Wrap("broker: read feed position", err)
	}
	epoch, lastID := res[0], res[2]
	seq, err := strconv.ParseUint(res[1], 10, 64)
	if err != nil {
		return fmt.Errorf("broker: bus:seq %q: %w", res[1], err)
	}

	first := false
	b.readyOnce.Do(func() { first = true })
	b.mu.Lock()
	if first {
		b.epoch, b.head, b.feedID = epoch, seq, lastID
		b.mu.Unlock()
		close(b.ready)
		return nil
	}
	lost := epoch != b.epoch
	if !lost {
		rolledBack, gap, err := b.checkFeed(ctx, seq)
		if err != nil {
			b.mu.Unlock()
			return err
		}
		if rolledBack {
			// Redis came back with older data under the same epoch (a
			// snapshot, an fsync'd-every-second file, a lagging replica):
			// the sequence numbers after its data will be handed out again,
			// so every cursor from before must expire. A new epoch does it;
			// set only if no other instance has set one already.
			b.logger.Warn("redis: data rolled back to an earlier state; starting a new epoch so old cursors reset",
				slog.Uint64("redis_seq", seq), slog.Uint64("delivered", b.head))
			if epoch, err = b.renewEpoch(ctx, epoch); err != nil {
				b.mu.Unlock()
				return err
			}
		}
		lost = rolledBack || gap
	}
	if lost {
		b.logger.Warn("redis: the feed no longer holds what this instance missed; ending local connections so they resume from their cursors",
			slog.String("epoch", epoch), slog.Uint64("head", seq), slog.Uint64("delivered", b.head))
		b.epoch, b.head, b.headID, b.feedID = epoch, seq, "", lastID
		b.moved()
	}
	b.mu.Unlock()
	if lost {
		b.hub.Each(func(c Conn) {
			if r, ok := c.(Resyncer); ok {
				r.Resync()
			}
		})
	}
	return nil
}

// checkFeed tells, after an outage, whether reading on from head is still
// exact. rolledBack: Redis holds older data than this instance delivered
// (its sequence is behind head, or the feed entry at head is another
// notification). gap: entries after head were trimmed before being read.
// The caller holds b.mu.
func (b *Redis) checkFeed(ctx context.Context, seq uint64) (rolledBack, gap bool, err error) {
	if seq < b.head {
		return true, false, nil
	}
	feed := b.keys.Key("bus", "feed")
	oldest, err := b.client.XRangeN(ctx, feed, "-", "+", 1).Result()
	if err != nil {
		return false, false, b.hooks.Wrap("broker: read feed start", err)
	}
	if b.head > 0 && b.headID != "" && len(oldest) > 0 && feedSeq(oldest[0].ID) <= b.head {
		id := strconv.FormatUint(b.head, 10) + "-0"
		at, err := b.client.XRange(ctx, feed, id, id).Result()
		if err != nil {
			return false, false, b.hooks.Wrap("broker: read feed at head", err)
		}
		if len(at) == 0 || str(at[0].Values["i"]) != b.headID {
			return true, false, nil
		}
	}
	gap = seq > b.head && (len(oldest) == 0 || feedSeq(oldest[0].ID) > b.head+1)
	return false, gap, nil
}

// renewEpochLua replaces the epoch only if it is still the one the caller
// saw, so instances noticing the same rollback agree on one new epoch.
// KEYS: epoch. ARGV: the epoch seen, the new one.
const renewEpochLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])
`

var renewEpochScript = redis.NewScript(renewEpochLua)

func (b *Redis) renewEpoch(ctx context.Context, seen string) (string, error) {
	epoch, err := renewEpochScript.Run(ctx, b.client, []string{b.keys.Key("bus", "epoch")}, seen, newEpoch()).Text()
	if err != nil {
		return "", b.hooks.Wrap("broker: renew epoch", err)
	}
	return epoch, nil
}

// Resyncer is a connection that can end itself so that its client resumes
// from its cursor. The Redis bus asks it of every local connection when its
// live feed has a gap it cannot fill.
type Resyncer interface {
	Resync()
}

// moved wakes Head's waiters. The caller holds b.mu.
func (b *Redis) moved() {
	close(b.advanced)
	b.advanced = make(chan struct{})
}

func feedSeq(id string) uint64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(ms, 10, 64)
	return n
}

// readFeed is the reader loop: XREAD BLOCK from the last id, hand off,
// repeat; on error, back off and resync.
func (b *Redis) readFeed(ctx context.Context) {
	feed := b.keys.Key("bus", "feed")
	backoff := redisconn.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	synced := false
	// The reader blocks on a connection of its own; go-redis does not
	// abort a blocked read when its context ends, so shutdown unblocks it
	// from another connection (CLIENT UNBLOCK) and Run returns at once.
	readerClient := b.readerClient
	defer readerClient.Close()
	var reader *redis.Conn
	defer func() {
		if reader != nil {
			reader.Close()
		}
	}()
	var readerID atomic.Int64
	stop := context.AfterFunc(ctx, func() {
		if id := readerID.Load(); id != 0 {
			unblockCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = b.client.ClientUnblock(unblockCtx, id).Err()
		}
	})
	defer stop()
	for ctx.Err() == nil {
		if reader == nil {
			reader = readerClient.Conn()
			id, err := reader.ClientID(ctx).Result()
			if err != nil {
				reader.Close()
				reader = nil
				if ctx.Err() == nil {
					b.setReadErr(b.hooks.Wrap("broker: open feed reader", err))
					backoff.Wait(ctx)
				}
				continue
			}
			readerID.Store(id)
			if ctx.Err() != nil {
				return // ended before the ID was known: nothing to unblock
			}
		}
		if !synced {
			if err := b.resync(ctx); err != nil {
				if ctx.Err() == nil {
					b.setReadErr(err)
					backoff.Wait(ctx)
				}
				continue
			}
			synced = true
		}
		select {
		case <-b.epochChanged:
			synced = false
			continue
		default:
		}
		b.mu.Lock()
		from, epoch := b.feedID, b.epoch
		b.mu.Unlock()
		streams, err := reader.XRead(ctx, &redis.XReadArgs{
			Streams: []string{feed, from},
			Count:   1000,
			Block:   2 * time.Second,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil) && ctx.Err() != nil:
			return // unblocked for shutdown
		case errors.Is(err, redis.Nil):
			// Idle: a good moment to check that Redis still holds the
			// data the feed position refers to (go-redis retries a
			// command on a new connection by itself, so a Redis that
			// restarted empty may never have shown the reader an error).
			current, err := b.client.Get(ctx, b.keys.Key("bus", "epoch")).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				b.setReadErr(b.hooks.Wrap("broker: read epoch", err))
				synced = false
				continue
			}
			if current != epoch {
				synced = false
			}
			b.setReadErr(nil)
			continue
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			b.setReadErr(b.hooks.Wrap("broker: read feed", err))
			reader.Close()
			reader = nil
			synced = false
			backoff.Wait(ctx)
			continue
		}
		b.setReadErr(nil)
		backoff.Reset()
		for _, s := range streams {
			if b.deliver(s.Messages) {
				synced = false // resync ends local connections: they resume
			}
		}
	}
}

// deliver hands one batch of feed entries to the hub, in feed order.
// It reports a gap, and stops before it, when the next notification is not
// the one after head: every sequence number has its own feed entry, so
// entries were trimmed before this instance read them (it stalled, or fell
// behind by more than feedMaxLen), and the reader must resync.
func (b *Redis) deliver(msgs []redis.XMessage) (gap bool) {
	type done struct {
		n       Notification
		reached int
	}
	var audit []done
	advanced := false
	b.mu.Lock()
	for _, m := range msgs {
		frame, _ := m.Values["f"].(string)
		user, _ := m.Values["u"].(string)
		kind := m.Values["k"]
		if kind == "n" {
			if seq := feedSeq(m.ID); seq > b.head+1 {
				gap = true
				break
			}
		}
		b.feedID = m.ID
		switch kind {
		case "n":
			seq := feedSeq(m.ID)
			if seq <= b.head {
				continue // covered by a resync's head
			}
			b.head, b.headID = seq, str(m.Values["i"])
			advanced = true
			n := Notification{ID: str(m.Values["i"]), UserID: user, Seq: seq}
			if chans := str(m.Values["c"]); chans != "" {
				n.Channels = strings.Split(chans, ",")
			}
			f := &Frame{Cursor: str(m.Values["r"]), Seq: seq, JSON: []byte(frame)}
			if us, err := strconv.ParseInt(str(m.Values["t"]), 10, 64); err == nil {
				f.Published = time.UnixMicro(us)
			}
			audit = append(audit, done{n, b.hub.Deliver(n, f)})
		case "u":
			var head struct {
				Event string `json:"event"`
			}
			_ = json.Unmarshal([]byte(frame), &head)
			b.hub.DeliverToUser(user, &Frame{Event: head.Event, JSON: []byte(frame)})
		}
	}
	if advanced {
		b.moved()
	}
	b.mu.Unlock()
	for _, d := range audit {
		b.delivered(d.n, d.reached)
	}
	return gap
}

func str(v any) string { s, _ := v.(string); return s }

// listenControl answers subscribe requests for connections held here and
// routes answers to this instance's pending requests. go-redis resubscribes
// by itself after a reconnect.
func (b *Redis) listenControl(ctx context.Context) {
	controlCh := b.keys.Key("bus", "control")
	replyCh := b.keys.Key("bus", "reply", b.instance)
	ps := b.client.Subscribe(ctx, controlCh, replyCh)
	defer ps.Close()
	// With subscriptions in the stream, the confirmation of replyCh says
	// that answers to this instance's requests will arrive; until then
	// changeChannels refuses to route.
	events := ps.ChannelWithSubscriptions(redis.WithChannelSize(256))
	for {
		var m *redis.Message
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch ev := ev.(type) {
			case *redis.Subscription:
				if ev.Kind == "subscribe" && ev.Channel == replyCh {
					b.pendingMu.Lock()
					b.listening = true
					b.pendingMu.Unlock()
				}
				continue
			case *redis.Message:
				m = ev
			default:
				continue
			}
			switch m.Channel {
			case controlCh:
				b.answer(ctx, []byte(m.Payload))
			case replyCh:
				var r controlReply
				if json.Unmarshal([]byte(m.Payload), &r) != nil {
					continue
				}
				b.pendingMu.Lock()
				ch := b.pending[r.ID]
				b.pendingMu.Unlock()
				if ch != nil {
					select {
					case ch <- r:
					default:
					}
				}
			}
		}
	}
}

func (b *Redis) answer(ctx context.Context, payload []byte) {
	var req controlRequest
	if json.Unmarshal(payload, &req) != nil || req.ReplyTo == b.instance {
		return
	}
	reply := controlReply{ID: req.ID}
	sub, err, local := b.changeLocal(req.Conn, req.Channels, req.Subscribe)
	if local {
		reply.Found, reply.Sub = true, sub
		switch {
		case errors.Is(err, ErrTooManyChannels):
			reply.Error = "too_many_channels"
		case err != nil:
			reply.Error = err.Error()
		}
	}
	body, _ := json.Marshal(reply)
	if err := b.client.Publish(ctx, b.keys.Key("bus", "reply", req.ReplyTo), body).Err(); err != nil && ctx.Err() == nil {
		b.logger.Warn("redis: answer a routed subscribe", slog.String("connection_id", req.Conn), slog.Any("error", err))
	}
}
