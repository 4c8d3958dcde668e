// Package redisconn owns how the service reaches Redis: reading REDIS_URL in
// every form the seed uses, opening a client that fails fast when Redis is
// down, naming keys under REDIS_PREFIX, telling "Redis is unreachable" apart
// from other failures (it wraps store.ErrUnavailable, so callers answer 503
// rather than 500), and the plumbing every Redis component shares: counting
// failed commands (Hooks), spacing retries (Backoff), random ids, and the
// oldest Redis the service runs on (CheckVersion). It knows nothing of what
// the keys hold; the inbox, broker, schedule and idempotency packages each
// own their own keys.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/store"
)

// ParseURL reads REDIS_URL. A value without "://" is a plain host:port
// (the seed's "localhost:6379" and compose's "redis:6379"): go-redis's own
// ParseURL rejects the first and silently turns the second into localhost.
// redis:// and rediss:// URLs may carry a user, a password and a database.
func ParseURL(raw string) (*redis.Options, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("empty Redis URL")
	}
	if !strings.Contains(raw, "://") {
		host, port, err := net.SplitHostPort(raw)
		if err != nil {
			return nil, fmt.Errorf("%q is neither host:port nor a redis:// URL: %w", raw, err)
		}
		if host == "" {
			return nil, fmt.Errorf("%q has no host", raw)
		}
		if err := checkPort(port); err != nil {
			return nil, fmt.Errorf("%q: %w", raw, err)
		}
		return &redis.Options{Addr: net.JoinHostPort(host, port)}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL: %w", redactErr(err, raw))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("Redis URL scheme %q: want redis:// or rediss://", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("Redis URL %s has no host", u.Redacted())
	}
	if u.Port() != "" {
		if err := checkPort(u.Port()); err != nil {
			return nil, fmt.Errorf("Redis URL %s: %w", u.Redacted(), err)
		}
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("Redis URL %s: %w", u.Redacted(), redactErr(err, raw))
	}
	return opts, nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// redactErr keeps a password in the URL out of an error message, which may
// be logged.
func redactErr(err error, raw string) error {
	u, perr := url.Parse(raw)
	if perr != nil || u.User == nil {
		return err
	}
	pass, ok := u.User.Password()
	if !ok || pass == "" {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pass, "xxxxx"))
}

// Open returns a client for opts tuned to fail fast: a send while Redis is
// down answers 503 at once instead of hanging on retries.
func Open(opts *redis.Options) *redis.Client {
	o := *opts
	o.DialTimeout = 2 * time.Second
	o.ReadTimeout = 3 * time.Second
	o.WriteTimeout = 3 * time.Second
	o.PoolTimeout = 4 * time.Second
	// No automatic retry: go-redis retries a command after a read
	// timeout or a reset, and a publish script that ran but whose answer
	// was lost would run twice, a duplicate notification. The caller gets
	// the error (503) and retries with its Idempotency-Key instead.
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.ContextTimeoutEnabled = true
	return redis.NewClient(&o)
}

// Prefix names keys and pub/sub channels so several apps or environments
// can share one Redis: every name the service uses starts with it.
type Prefix string

// Key joins parts under the prefix with ':'.
func (p Prefix) Key(parts ...string) string {
	return string(p) + strings.Join(parts, ":")
}

// Wrap marks err with store.ErrUnavailable when it means Redis could not be
// reached or could not serve, and wraps it with op either way. A nil err
// stays nil; redis.Nil and the caller's own cancellation pass through as
// they are.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if Unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Unavailable says whether err means Redis could not be reached or serve.
func Unavailable(err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, store.ErrUnavailable):
		return true
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		// An error reply is Redis answering: a bug (a script error, a
		// wrong type) unless it says it cannot serve right now (OOM: full
		// under maxmemory-policy noeviction; it refused before writing).
		msg := reply.Error()
		for _, transient := range []string{"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "READONLY", "CLUSTERDOWN", "NOREPLICAS", "OOM"} {
			if strings.HasPrefix(msg, transient) {
				return true
			}
		}
		return false
	}
	// Everything else is the connection: refused, reset, EOF, timeouts,
	// the pool exhausted or closed.
	return true
}

// ClientLog routes go-redis's own messages (a failed dial while Redis is
// away, repeated for every attempt) into the service's structured log at
// debug level: the service already logs Redis outages once, as errors, where
// it notices them.
type ClientLog struct{ Logger *slog.Logger }

// Printf implements go-redis's logging interface.
func (l ClientLog) Printf(ctx context.Context, format string, v ...any) {
	l.Logger.DebugContext(ctx, "go-redis", slog.String("message", fmt.Sprintf(format, v...)))
}
