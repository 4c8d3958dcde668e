package laravel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/internal/redisconn"
)

// Exactly once across instances. Every instance subscribes and keeps what
// it hears (the backlog); one of them, the holder of a lease in the
// service's Redis, publishes. Before publishing a broadcast the leader
// writes a progress marker: the digests of the last messages it read, up
// to that broadcast, and the ids it gave it. The write is fenced by the
// lease (a leader that lost it writes nothing and stops), and publishing
// follows it. A standby that takes the lease over finds the marker's
// messages in its own backlog (Redis sends every subscriber the same
// messages in the same order), publishes the marked broadcast again under
// the marked ids (the bus drops an id it has already published) and
// everything after it. So a graceful hand-over loses nothing, and a crash
// delays the leader's broadcasts by the lease's TTL without losing them,
// as long as the standby still keeps them (Config.Keep).

// leaseKeys are the ingester's keys in the service's Redis.
type leaseKeys struct {
	lease    string // the leader's token, with the TTL
	progress string // the leader's last progress marker
}

// windowLen is how many message digests a progress marker holds: enough
// that a place in the backlog is found unambiguously unless more than this
// many identical messages ran in a row.
const windowLen = 16

// progress is a marker: where a leader is, and the ids of the broadcast it
// is publishing.
type progress struct {
	Window []string `json:"w"`   // hex digests, oldest first, ending at the broadcast's last message
	Size   int      `json:"n"`   // messages in the broadcast
	IDs    []string `json:"ids"` // its notifications' ids
}

var (
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
	// markScript writes a marker only for the lease's holder.
	markScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
return 1`)
)

// leaseCallTimeout bounds one lease command.
const leaseCallTimeout = 2 * time.Second

// keepLease competes for the lease while this instance listens, and leads
// while it holds it, until ctx ends.
func (in *Ingester) keepLease(ctx context.Context) {
	poll := in.cfg.LeaseTTL / 10
	for ctx.Err() == nil {
		if !in.listening() {
			sleep(ctx, poll)
			continue
		}
		token := newToken()
		call, cancel := context.WithTimeout(ctx, leaseCallTimeout)
		won, err := in.cfg.Lease.SetNX(call, in.keys.lease, token, in.cfg.LeaseTTL).Result()
		cancel()
		if err != nil || !won {
			sleep(ctx, poll)
			continue
		}
		wait := poll
		if in.serve(ctx, token) == endYield {
			// Give a standby that heard what this one missed the time to
			// take over.
			wait = 3 * poll
		}
		sleep(ctx, wait)
	}
}

// listening says whether the subscription is in place: an instance that
// cannot hear Laravel must not lead.
func (in *Ingester) listening() bool {
	return in.backlog.isSubscribed() && in.stats.connected.Load()
}

type termEnd int

const (
	endStopped termEnd = iota // ctx ended, or the leader stopped by itself
	endLost                   // the lease is gone or could not be renewed in time
	endYield                  // the subscription broke: hand over
)

func (e termEnd) String() string {
	return [...]string{"stopped", "lease lost", "subscription lost"}[e]
}

// serve leads for one term and ends it.
func (in *Ingester) serve(ctx context.Context, token string) termEnd {
	in.stats.terms.Add(1)
	select { // a loss before this term is the takeover's business
	case <-in.broken:
	default:
	}
	termCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if pos, again, ok := in.takeover(termCtx); ok {
			in.lead(termCtx, &term{token: token}, pos, again)
		}
	}()
	end := in.hold(ctx, token, done)
	cancel()
	<-done
	if end != endLost {
		// Every marker is written: release, so a standby takes over at
		// once rather than after the TTL.
		call, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseCallTimeout)
		if err := releaseScript.Run(call, in.cfg.Lease, []string{in.keys.lease}, token).Err(); err != nil {
			in.log.Warn("laravel: could not release the lease; a standby takes over when it expires", slog.Any("error", err))
		}
		cancel()
	}
	in.log.Info("laravel: stopped leading", slog.String("reason", end.String()))
	return end
}

// hold renews the lease until ctx ends, the leader stops, the subscription
// breaks or the lease is lost.
func (in *Ingester) hold(ctx context.Context, token string, done <-chan struct{}) termEnd {
	every := in.cfg.LeaseTTL / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return endStopped
		case <-done:
			return endStopped
		case <-in.broken:
			return endYield
		case <-tick.C:
		}
		call, cancel := context.WithTimeout(ctx, leaseCallTimeout)
		n, err := renewScript.Run(call, in.cfg.Lease, []string{in.keys.lease}, token, in.cfg.LeaseTTL.Milliseconds()).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			renewed = time.Now()
		case err == nil:
			in.log.Warn("laravel: the lease was taken over")
			return endLost
		case time.Since(renewed) >= in.cfg.LeaseTTL-every:
			// Stop before the lease can have expired in Redis; the
			// fence on markers keeps the overlap harmless anyway.
			in.log.Warn("laravel: could not renew the lease in time", slog.Any("error", err))
			return endLost
		}
	}
}

// mark writes the progress marker for the broadcast group, fenced by the
// lease. It retries while Redis is away, and returns false once this
// instance no longer leads.
func (in *Ingester) mark(ctx context.Context, t *term, group []entry, ns []broker.Notification) bool {
	last := group[len(group)-1]
	p := progress{Size: len(group)}
	for _, d := range in.backlog.window(last.seq, windowLen) {
		p.Window = append(p.Window, strconv.FormatUint(d, 16))
	}
	for _, n := range ns {
		p.IDs = append(p.IDs, n.ID)
	}
	body, _ := json.Marshal(p) // strings only
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		call, cancel := context.WithTimeout(ctx, leaseCallTimeout)
		n, err := markScript.Run(call, in.cfg.Lease, []string{in.keys.lease, in.keys.progress}, t.token, body).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			return true
		case err == nil, ctx.Err() != nil:
			return false
		}
		in.log.Warn("laravel: could not mark progress; retrying", slog.Any("error", err))
		if !sleep(ctx, backoff) {
			return false
		}
	}
}

// readProgress returns the current marker, "" when there is none.
func (in *Ingester) readProgress(ctx context.Context) (string, error) {
	call, cancel := context.WithTimeout(ctx, leaseCallTimeout)
	defer cancel()
	s, err := in.cfg.Lease.Get(call, in.keys.progress).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return s, redisconn.Wrap("laravel: read progress", err)
}

func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
