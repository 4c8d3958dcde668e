package transport

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: PerSecond events a second on average, up to Burst
// at once. A zero PerSecond is no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimits are the four request rates the transport bounds. Connects
// count attempts at /sse, /ws and /app/{key} (for its user when it
// subscribes to the user's channel); sends count calls of send and schedule.
// "Per user" for sends is per addressed user (each user_ids entry counts),
// so a runaway job cannot flood one inbox past its retention.
type RateLimits struct {
	ConnectsPerAddr Rate
	ConnectsPerUser Rate
	SendsPerAddr    Rate
	SendsPerUser    Rate
}

const (
	// maxRateKeys bounds each limiter map: with a trusted X-Forwarded-For
	// or open-mode user ids, the keys are the client's to choose.
	maxRateKeys = 100_000
	// rateSweepEvery spaces the sweeps that forget idle keys; a full map is
	// swept at most once a second, so a flood of new keys cannot make every
	// request pay for a sweep.
	rateSweepEvery     = time.Minute
	rateFullSweepEvery = time.Second
)

// limiterSet is one Rate applied per key (client address or user id). It
// holds a limiter only for keys seen recently: a key whose bucket has
// refilled is forgotten, which changes nothing, since a new limiter starts
// full. No goroutine per key: sweeps happen inline, when a new key arrives.
type limiterSet struct {
	rate    Rate
	maxKeys int

	mu        sync.Mutex
	byKey     map[string]*rate.Limiter
	lastSweep time.Time
}

func newLimiterSet(r Rate, maxKeys int) *limiterSet {
	return &limiterSet{rate: r, maxKeys: maxKeys, byKey: make(map[string]*rate.Limiter)}
}

// enabled says whether the set limits anything.
func (l *limiterSet) enabled() bool { return l != nil && l.rate.PerSecond > 0 }

// take spends one event for every key, all or nothing: a batch send to many
// users either passes for all of them or is refused without spending
// anyone's allowance (a refused request changes nothing). When refused,
// wait is how long until it would pass.
func (l *limiterSet) take(now time.Time, keys ...string) (wait time.Duration, ok bool) {
	if !l.enabled() {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Each limiter is only touched under l.mu, so checking then spending
	// cannot race.
	lims := make([]*rate.Limiter, len(keys))
	for i, k := range keys {
		lims[i] = l.limiter(k, now)
		if tokens := lims[i].TokensAt(now); tokens < 1 {
			wait = max(wait, time.Duration((1-tokens)/l.rate.PerSecond*float64(time.Second)))
		}
	}
	if wait > 0 {
		return wait, false
	}
	for _, lim := range lims {
		lim.AllowN(now, 1)
	}
	return 0, true
}

// limiter returns key's limiter, making room for a new one. Called with
// l.mu held.
func (l *limiterSet) limiter(key string, now time.Time) *rate.Limiter {
	if lim, ok := l.byKey[key]; ok {
		return lim
	}
	full := len(l.byKey) >= l.maxKeys
	if since := now.Sub(l.lastSweep); since >= rateSweepEvery || (full && since >= rateFullSweepEvery) {
		l.sweep(now)
	}
	if len(l.byKey) >= l.maxKeys {
		// Every key is still in debt: forget one at random (map order is)
		// rather than grow without bound. That key starts afresh, which
		// with this many distinct keys in flight is no real loss.
		for k := range l.byKey {
			delete(l.byKey, k)
			break
		}
	}
	lim := rate.NewLimiter(rate.Limit(l.rate.PerSecond), l.rate.Burst)
	l.byKey[key] = lim
	return lim
}

// sweep forgets the keys whose bucket is full again.
func (l *limiterSet) sweep(now time.Time) {
	l.lastSweep = now
	for k, lim := range l.byKey {
		if lim.TokensAt(now) >= float64(l.rate.Burst) {
			delete(l.byKey, k)
		}
	}
}

// size is the number of keys held.
func (l *limiterSet) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byKey)
}

// rateLimited is the answer to a request over a rate: 429 with a
// Retry-After of whole seconds, at least one.
func rateLimited(wait time.Duration, what string) *apiError {
	return &apiError{
		Status:     http.StatusTooManyRequests,
		Code:       "rate_limited",
		Message:    fmt.Sprintf("too many %s; retry later", what),
		RetryAfter: max(1, int(math.Ceil(wait.Seconds()))),
	}
}

// rateLimiters are the four rates of RateLimits, each applied per key.
type rateLimiters struct {
	connectsPerAddr, connectsPerUser *limiterSet
	sendsPerAddr, sendsPerUser       *limiterSet
}

func newRateLimiters(r RateLimits) rateLimiters {
	return rateLimiters{
		connectsPerAddr: newLimiterSet(r.ConnectsPerAddr, maxRateKeys),
		connectsPerUser: newLimiterSet(r.ConnectsPerUser, maxRateKeys),
		sendsPerAddr:    newLimiterSet(r.SendsPerAddr, maxRateKeys),
		sendsPerUser:    newLimiterSet(r.SendsPerUser, maxRateKeys),
	}
}

// userSlots bounds live streams per user on this instance. Taking a slot
// happens under one lock, so two connects racing for the last slot cannot
// both win; an entry exists only while its user has a stream.
type userSlots struct {
	max int // 0: no bound

	mu     sync.Mutex
	byUser map[string]int
}

func newUserSlots(max int) *userSlots {
	return &userSlots{max: max, byUser: make(map[string]int)}
}

// acquire takes a slot for userID; false means the user is at the bound.
// Every true must be matched by one release.
func (u *userSlots) acquire(userID string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.max > 0 && u.byUser[userID] >= u.max {
		return false
	}
	u.byUser[userID]++
	return true
}

func (u *userSlots) release(userID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byUser[userID] <= 1 {
		delete(u.byUser, userID)
		return
	}
	u.byUser[userID]--
}

// clientAddr is the address rates per client are keyed by: the peer's IP
// (without its port, which changes on every connection), or, behind a
// trusted proxy, the first X-Forwarded-For hop when it is an IP address.
func (s *Server) clientAddr(r *http.Request) string {
	if s.opts.TrustForwardedFor {
		if v := r.Header.Get("X-Forwarded-For"); v != "" {
			first, _, _ := strings.Cut(v, ",")
			// Parsed, not taken as is: a key must be an address, not
			// whatever text the header carries.
			if ip, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return ip.Unmap().String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// addressAttrs name a request refused for its address's rate: the request,
// and the address the rate is kept for (X-Forwarded-For's when trusted).
func (s *Server) addressAttrs(r *http.Request) []slog.Attr {
	return append(requestAttrs(r), slog.String("client_addr", s.clientAddr(r)))
}

// allowConnectFrom spends one connect of the client's address.
func (s *Server) allowConnectFrom(r *http.Request) *apiError {
	if wait, ok := s.rates.connectsPerAddr.take(time.Now(), s.clientAddr(r)); !ok {
		return s.denied(rateLimited(wait, "connections from this address"), s.addressAttrs(r)...)
	}
	return nil
}

// admitUser applies the bounds of the user a stream belongs to: its connect
// rate, then its connection slots. release gives the slot back when the
// stream ends.
func (s *Server) admitUser(userID string) (release func(), e *apiError) {
	if wait, ok := s.rates.connectsPerUser.take(time.Now(), userID); !ok {
		return nil, s.denied(rateLimited(wait, "connections for this user"), slog.String("user_id", userID))
	}
	if !s.streams.slots.acquire(userID) {
		return nil, s.denied(&apiError{Status: http.StatusTooManyRequests, Code: "too_many_connections",
			Message: fmt.Sprintf("this user already has %d live connections here; close one first", s.streams.slots.max)},
			slog.String("user_id", userID))
	}
	return func() { s.streams.slots.release(userID) }, nil
}

// allowSendFrom spends one send of the client's address.
func (s *Server) allowSendFrom(r *http.Request) *apiError {
	if wait, ok := s.rates.sendsPerAddr.take(time.Now(), s.clientAddr(r)); !ok {
		return s.denied(rateLimited(wait, "sends from this address"), s.addressAttrs(r)...)
	}
	return nil
}

// allowSendTo spends one send of each addressed user, all or nothing.
func (s *Server) allowSendTo(userIDs []string) *apiError {
	if len(userIDs) == 0 {
		return nil
	}
	if wait, ok := s.rates.sendsPerUser.take(time.Now(), userIDs...); !ok {
		return s.denied(rateLimited(wait, "notifications for this user"), slog.Any("user_ids", userIDs))
	}
	return nil
}
