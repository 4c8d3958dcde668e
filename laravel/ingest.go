package laravel

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/internal/redisconn"
)

// Source names the redis broadcaster's path in the Publisher's metrics and
// audit.
const Source = "laravel_redis"

// Publisher is the ingester's view of the service's one publish path.
type Publisher interface {
	// Publish stores and delivers ns as one step, as broker.Bus.Publish
	// does, filling in what is missing (the timestamp). It must keep the
	// ids it is given: the ingester sets every id before the first
	// attempt and retries with the same ones, and a new leader republishes
	// its predecessor's last broadcast under the ids that one chose, so
	// the bus's memory of recent ids is what keeps either from publishing
	// twice. An error wrapping store.ErrUnavailable means "maybe not
	// done, retry"; any other, "refused, do not retry".
	Publish(ctx context.Context, source string, ns []broker.Notification) error
}

// Config is what an Ingester needs. Client, Publisher and Logger are
// required; zero durations and sizes take the defaults.
type Config struct {
	// Client is the Redis Laravel broadcasts on (LARAVEL_REDIS_URL).
	Client *redis.Client
	// Prefix is Laravel's database.redis.options.prefix
	// (LARAVEL_REDIS_PREFIX), which its RedisBroadcaster puts before
	// every channel name.
	Prefix    string
	Mapping   Mapping
	Publisher Publisher
	Logger    *slog.Logger

	// Lease is the service's own Redis (REDIS_URL), where instances agree
	// on which one publishes, and LeasePrefix its key prefix
	// (REDIS_PREFIX). A nil Lease means one instance alone (memory mode):
	// it publishes everything it receives.
	Lease       *redis.Client
	LeasePrefix string

	// LeaseTTL is how long a lease outlives its holder's last renewal
	// (default 3s): how long a crashed leader's broadcasts wait for a
	// standby. Renewed every third of it; standbys try every tenth.
	LeaseTTL time.Duration
	// Keep is how long every instance keeps what it received (default
	// 30s), KeepBytes how much at most (default 8 MiB): a standby taking
	// over finds in it what the previous leader left unpublished.
	Keep      time.Duration
	KeepBytes int
	// Linger is how long the leader waits for more messages of the EVAL
	// it is reading (one per channel) before taking the broadcast as
	// whole (default 3ms).
	Linger time.Duration
	// Grace is how long a new leader waits to receive the message its
	// predecessor published last (default 500ms).
	Grace time.Duration
}

// Ingester subscribes to Laravel's redis broadcaster and publishes what it
// broadcasts, once across every instance sharing Config.Lease.
type Ingester struct {
	cfg     Config
	log     *slog.Logger
	pattern string
	keys    leaseKeys
	backlog *backlog
	// broken receives when this instance's subscription breaks, so a
	// leader steps down for a standby that heard what it missed.
	broken chan struct{}
	stats  counters
}

// NewIngester checks cfg and fills in its defaults.
func NewIngester(cfg Config) (*Ingester, error) {
	if cfg.Client == nil || cfg.Publisher == nil || cfg.Logger == nil {
		return nil, errors.New("laravel: ingester needs a Redis client, a publisher and a logger")
	}
	cfg.LeaseTTL = orDuration(cfg.LeaseTTL, 3*time.Second)
	cfg.Keep = orDuration(cfg.Keep, 30*time.Second)
	cfg.KeepBytes = orDefault(cfg.KeepBytes, 8<<20)
	cfg.Linger = orDuration(cfg.Linger, 3*time.Millisecond)
	cfg.Grace = orDuration(cfg.Grace, 500*time.Millisecond)
	prefix := redisconn.Prefix(cfg.LeasePrefix)
	return &Ingester{
		cfg:     cfg,
		log:     cfg.Logger.With(slog.String("component", "laravel"), slog.String("prefix", cfg.Prefix)),
		pattern: globEscape(cfg.Prefix) + "*",
		keys: leaseKeys{
			lease:    prefix.Key("laravel", cfg.Prefix, "lease"),
			progress: prefix.Key("laravel", cfg.Prefix, "progress"),
		},
		backlog: newBacklog(cfg.Keep, cfg.KeepBytes),
		broken:  make(chan struct{}, 1),
	}, nil
}

func orDuration(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// globEscape quotes the characters PSUBSCRIBE's pattern treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Run subscribes and publishes until ctx ends, then stops every goroutine
// it started: a leader finishes the broadcast in hand and hands the lease
// over, so a standby continues where it stopped. It returns nil once
// stopped; Redis being away is logged and waited out, never returned.
func (in *Ingester) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { in.receive(ctx) })
	if in.cfg.Lease == nil {
		in.lead(ctx, nil, in.backlog.oldest(), nil)
	} else {
		in.keepLease(ctx)
	}
	wg.Wait()
	return nil
}

// probeEvery is how long a quiet subscription waits before pinging: a
// connection that answers neither within two periods is dead.
const probeEvery = time.Second

// receive owns the subscription: it files every message in the backlog,
// logs losses and reconnections, and replaces a connection that stopped
// answering.
func (in *Ingester) receive(ctx context.Context) {
	var mu sync.Mutex
	ps := in.cfg.Client.PSubscribe(ctx, in.pattern)
	// ReceiveTimeout does not watch ctx; closing the subscription does
	// end it.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		mu.Lock()
		defer mu.Unlock()
		ps.Close()
	})
	defer func() {
		if !stop() {
			<-closed // the closing goroutine is Run's too: wait for it
		}
		mu.Lock()
		defer mu.Unlock()
		ps.Close()
	}()

	pinged := false
	lose := func(err error) {
		if in.stats.connected.Swap(false) {
			in.log.Warn("laravel: subscription lost; what Laravel publishes until it is back is lost for this instance", slog.Any("error", err))
			in.signalBroken()
		}
	}
	for backoff := time.Duration(0); ; {
		msg, err := ps.ReceiveTimeout(ctx, probeEvery)
		if ctx.Err() != nil {
			return
		}
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout() && !pinged:
			pinged = true
			if perr := ps.Ping(ctx); perr != nil {
				lose(perr)
			}
			continue
		case err != nil && errors.As(err, &ne) && ne.Timeout():
			// Two silent periods, a ping unanswered: a half-open
			// connection go-redis would wait on forever.
			lose(err)
			mu.Lock()
			ps.Close()
			ps = in.cfg.Client.PSubscribe(ctx, in.pattern)
			mu.Unlock()
			pinged = false
			continue
		case err != nil:
			// go-redis reconnects and subscribes again on the next
			// receive; wait a little between attempts.
			lose(err)
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			if !sleep(ctx, backoff) {
				return
			}
			continue
		}
		pinged, backoff = false, 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "psubscribe" {
				in.subscribed(ctx)
				in.stats.connected.Store(true)
			}
		case *redis.Message:
			in.stats.received.Add(1)
			in.backlog.add(strings.TrimPrefix(m.Channel, in.cfg.Prefix), []byte(m.Payload), time.Now())
		}
	}
}

// subscribed starts a new segment of the backlog once the subscription is
// in place, with the leader's progress as it stands now: whatever the
// leader marks later, this instance heard too.
func (in *Ingester) subscribed(ctx context.Context) {
	n := in.stats.subscriptions.Add(1)
	progress, known := "", true
	if in.cfg.Lease != nil {
		var err error
		progress, err = in.readProgress(ctx)
		known = err == nil
	}
	in.backlog.subscribed(progress, known)
	if n == 1 {
		in.log.Info("laravel: subscribed", slog.String("pattern", in.pattern))
	} else {
		in.log.Warn("laravel: subscribed again after a loss", slog.String("pattern", in.pattern))
	}
}

func (in *Ingester) signalBroken() {
	select {
	case in.broken <- struct{}{}:
	default:
	}
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Stats counts what an ingester did since it was made.
type Stats struct {
	Received      uint64 // pub/sub messages received
	Published     uint64 // broadcasts published (each one or more notifications)
	Invalid       uint64 // broadcasts refused by the mapping: logged, never published
	Failed        uint64 // broadcasts the publisher refused
	Skipped       uint64 // messages a new leader could not place, or that aged out unpublished
	Subscriptions uint64 // subscriptions made, the first and every one after a loss
	Terms         uint64 // times this instance became the leader
	Leading       bool
}

type counters struct {
	received, published, invalid, failed, skipped, subscriptions, terms atomic.Uint64
	leading, connected                                                  atomic.Bool
}

// Stats returns the counts so far.
func (in *Ingester) Stats() Stats {
	c := &in.stats
	return Stats{
		Received: c.received.Load(), Published: c.published.Load(), Invalid: c.invalid.Load(),
		Failed: c.failed.Load(), Skipped: c.skipped.Load(), Subscriptions: c.subscriptions.Load(),
		Terms: c.terms.Load(), Leading: c.leading.Load(),
	}
}
