package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"notification-service/auth"
	"notification-service/idempotency"
	"notification-service/internal/redisconn"
	"notification-service/laravel"
	"notification-service/pusher"
	"notification-service/schedule"
)

// config is every setting, read once from the environment (docs/ARCHITECTURE.md#configuration).
type config struct {
	Port int `env:"PORT" envDefault:"8080"`
	// RedisURL switches on distributed mode
	// (docs/ARCHITECTURE.md#redis-mode-keys-and-scripts): host:port,
	// redis://[user:pass@]host:port/db or rediss://. Empty is memory mode.
	RedisURL    string `env:"REDIS_URL"`
	RedisPrefix string `env:"REDIS_PREFIX" envDefault:"notif:"`
	// GinMode is kept from the seed: release, debug and test pick a log
	// level when LOG_LEVEL is not set.
	GinMode   string `env:"GIN_MODE"`
	LogLevel  string `env:"LOG_LEVEL"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`

	HeartbeatInterval time.Duration `env:"HEARTBEAT_INTERVAL" envDefault:"30s"`
	PongTimeout       time.Duration `env:"PONG_TIMEOUT" envDefault:"10s"`
	WriteTimeout      time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s"`
	ShutdownTimeout   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`

	InboxMaxPerUser      int           `env:"INBOX_MAX_PER_USER" envDefault:"1000"`
	InboxMaxAge          time.Duration `env:"INBOX_MAX_AGE" envDefault:"720h"`
	InboxMaxPageSize     int           `env:"INBOX_MAX_PAGE_SIZE" envDefault:"200"`
	HistoryMaxPerChannel int           `env:"HISTORY_MAX_PER_CHANNEL" envDefault:"1000"`
	HistoryMaxAge        time.Duration `env:"HISTORY_MAX_AGE" envDefault:"24h"`
	IdempotencyTTL       time.Duration `env:"IDEMPOTENCY_TTL" envDefault:"24h"`
	// Pending schedules: per addressed user, and in all (what bounds
	// broadcasts, and the store, the number of users being unbounded). 0
	// is no bound.
	MaxPendingSchedulesPerUser int `env:"MAX_PENDING_SCHEDULES_PER_USER" envDefault:"1000"`
	MaxPendingSchedules        int `env:"MAX_PENDING_SCHEDULES" envDefault:"100000"`
	// IdempotencyClaimLease is how long a request holds its
	// Idempotency-Key before a retry may take it over (an attempt that
	// died half-way leaves its claim behind).
	IdempotencyClaimLease time.Duration `env:"IDEMPOTENCY_CLAIM_LEASE" envDefault:"5s"`

	MaxBodyBytes    int64    `env:"MAX_BODY_BYTES" envDefault:"65536"`
	MaxFrameBytes   int64    `env:"MAX_FRAME_BYTES" envDefault:"16384"`
	MaxChannels     int      `env:"MAX_CHANNELS_PER_CONNECTION" envDefault:"100"`
	ClientQueueSize int      `env:"CLIENT_QUEUE_SIZE" envDefault:"256"`
	AllowedOrigins  []string `env:"ALLOWED_ORIGINS" envDefault:"*" envSeparator:","`

	// Hostile input (docs/ARCHITECTURE.md#security-and-hostile-input): how
	// deep a JSON body or frame may nest, how many header bytes a request may
	// carry (431 beyond), how long a client may take to send them, and how
	// long an idle keep-alive stays open.
	MaxJSONDepth      int           `env:"MAX_JSON_DEPTH" envDefault:"32"`
	MaxHeaderBytes    int           `env:"MAX_HEADER_BYTES" envDefault:"16384"`
	ReadHeaderTimeout time.Duration `env:"READ_HEADER_TIMEOUT" envDefault:"10s"`
	IdleTimeout       time.Duration `env:"IDLE_TIMEOUT" envDefault:"120s"`

	// Security (docs/ARCHITECTURE.md#security-and-hostile-input; README
	// "Security"). JWT_SECRET turns token mode on (without it browsers run
	// open, ?user_id= naming the user); API_KEY guards the backend
	// endpoints, and token mode requires it. Rates are events per second,
	// each with a burst; a rate of 0 disables it.
	JWTSecret                secret  `env:"JWT_SECRET"`
	APIKey                   secret  `env:"API_KEY"`
	AuthCookie               string  `env:"AUTH_COOKIE" envDefault:"notif_token"`
	MaxConnectionsPerUser    int     `env:"MAX_CONNECTIONS_PER_USER" envDefault:"20"`
	RateConnectsPerAddr      float64 `env:"RATE_CONNECTS_PER_ADDR" envDefault:"50"`
	RateConnectsPerAddrBurst int     `env:"RATE_CONNECTS_PER_ADDR_BURST" envDefault:"500"`
	RateConnectsPerUser      float64 `env:"RATE_CONNECTS_PER_USER" envDefault:"2"`
	RateConnectsPerUserBurst int     `env:"RATE_CONNECTS_PER_USER_BURST" envDefault:"20"`
	RateSendsPerAddr         float64 `env:"RATE_SENDS_PER_ADDR" envDefault:"1000"`
	RateSendsPerAddrBurst    int     `env:"RATE_SENDS_PER_ADDR_BURST" envDefault:"2000"`
	RateSendsPerUser         float64 `env:"RATE_SENDS_PER_USER" envDefault:"10"`
	RateSendsPerUserBurst    int     `env:"RATE_SENDS_PER_USER_BURST" envDefault:"100"`
	TrustForwardedFor        bool    `env:"TRUST_FORWARDED_FOR" envDefault:"false"`

	// Laravel's broadcasting (README "Laravel"). The Pusher app turns on
	// Pusher's HTTP API (the reverb and pusher broadcasters): all three or
	// none. LaravelRedisPrefix turns on the redis broadcaster's ingestion:
	// Laravel's database.redis.options.prefix, on LARAVEL_REDIS_URL
	// (REDIS_URL when empty). LaravelUserChannelPrefix names the notifiable
	// model's private channel (private-App.Models.User.{id}).
	PusherAppID           string        `env:"PUSHER_APP_ID"`
	PusherAppKey          string        `env:"PUSHER_APP_KEY"`
	PusherAppSecret       secret        `env:"PUSHER_APP_SECRET"`
	PusherTimestampWindow time.Duration `env:"PUSHER_TIMESTAMP_WINDOW" envDefault:"600s"`
	// PresenceMaxMembers bounds the members of one presence channel
	// (Pusher's default, 100).
	PresenceMaxMembers int `env:"PRESENCE_MAX_MEMBERS" envDefault:"100"`
	// In Redis mode each instance renews its presence memberships every
	// PresenceHeartbeat; an instance silent for PresenceLapse is dead and
	// its members leave (within Lapse + Heartbeat). Use the same values on
	// every instance.
	PresenceHeartbeat        time.Duration `env:"PRESENCE_HEARTBEAT" envDefault:"5s"`
	PresenceLapse            time.Duration `env:"PRESENCE_LAPSE" envDefault:"15s"`
	LaravelRedisURL          string        `env:"LARAVEL_REDIS_URL"`
	LaravelRedisPrefix       string        `env:"LARAVEL_REDIS_PREFIX"`
	LaravelUserChannelPrefix string        `env:"LARAVEL_USER_CHANNEL_PREFIX" envDefault:"App.Models.User."`

	// The dashboard and analytics (README "Dashboard and analytics"):
	// how long per-type daily figures are kept (in Redis mode their keys
	// expire; in memory mode they are dropped), how many types a day holds
	// before the rest count as "_other", and how often each instance
	// reports itself and how soon one that stopped disappears.
	AnalyticsRetention time.Duration `env:"ANALYTICS_RETENTION" envDefault:"720h"`
	AnalyticsMaxTypes  int           `env:"ANALYTICS_MAX_TYPES" envDefault:"100"`
	InstanceHeartbeat  time.Duration `env:"INSTANCE_HEARTBEAT" envDefault:"1s"`
	InstanceLapse      time.Duration `env:"INSTANCE_LAPSE" envDefault:"5s"`

	// TLS: with both files set the service serves HTTPS (and HTTP/2) on
	// PORT, reloading a renewed pair without a restart. HTTP2Cleartext
	// also accepts HTTP/2 without TLS (h2c), for a proxy that speaks it.
	TLSCertFile    string `env:"TLS_CERT_FILE"`
	TLSKeyFile     string `env:"TLS_KEY_FILE"`
	HTTP2Cleartext bool   `env:"HTTP2_CLEARTEXT" envDefault:"false"`

	// DebugPprofAddr, when set, serves net/http/pprof on this address (a
	// second listener, e.g. 127.0.0.1:6060), never on PORT: profiles show
	// request data and cost CPU, so they stay off unless asked for.
	DebugPprofAddr string `env:"DEBUG_PPROF_ADDR"`
}

// redisPrefixPattern keeps the prefix out of the way of the key syntax the
// stores use ('{' and '}' delimit user and channel names).
var redisPrefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// laravelPrefixPattern is what a Laravel Redis prefix may hold: never
// empty (it would subscribe to every channel of a shared Redis) and never a
// glob character.
var laravelPrefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// mayBeEmpty says whether an empty value of a variable means something
// (an empty REDIS_URL is memory mode).
func mayBeEmpty(name string) bool { return name == "REDIS_URL" }

// pusherApp is the configured Pusher app, or nil when none is.
func (c config) pusherApp() *pusher.App {
	if c.PusherAppID == "" || c.PusherAppKey == "" || c.PusherAppSecret == "" {
		return nil
	}
	return &pusher.App{ID: c.PusherAppID, Key: c.PusherAppKey, Secret: string(c.PusherAppSecret)}
}

// mapping is how Laravel's broadcasts become notifications, bounded as a
// REST send is.
func (c config) mapping() laravel.Mapping {
	return laravel.Mapping{
		UserChannelPrefix: c.LaravelUserChannelPrefix, MaxChannels: c.MaxChannels,
		MaxDataBytes: int(c.MaxBodyBytes), MaxDepth: c.MaxJSONDepth,
	}
}

// loadConfig parses environ into a config. Every error names the
// environment variable, which caarlos0/env's own errors do not.
func loadConfig(environ map[string]string) (config, error) {
	var cfg config
	fields := reflect.TypeFor[config]()
	varOf := make(map[string]string, fields.NumField())
	var errs []error
	// rest is environ without the variables already reported, so one
	// start-up names every bad variable, each once: the reported ones take
	// their defaults and validate judges only the others.
	rest := maps.Clone(environ)
	for i := range fields.NumField() {
		name, _, _ := strings.Cut(fields.Field(i).Tag.Get("env"), ",")
		varOf[fields.Field(i).Name] = name
		// An empty variable would silently take the default: an operator
		// who wrote PORT= meant something, so say so.
		if v, set := environ[name]; set && strings.TrimSpace(v) == "" && !mayBeEmpty(name) {
			errs = append(errs, fmt.Errorf("%s is set but empty; unset it to use the default", name))
			delete(rest, name)
		}
	}
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: rest}); err != nil {
		var agg env.AggregateError
		if !errors.As(err, &agg) {
			return cfg, fmt.Errorf("config: %w", err)
		}
		for _, e := range agg.Errors {
			var pe env.ParseError
			if errors.As(e, &pe) {
				errs = append(errs, fmt.Errorf("%s=%q is not a valid %s: %w", varOf[pe.Name], environ[varOf[pe.Name]], pe.Type, pe.Err))
				delete(rest, varOf[pe.Name])
				continue
			}
			errs = append(errs, e)
		}
		// A field that failed to parse is left zero, which validate would
		// report a second time; parse again without them.
		cfg = config{}
		if err := env.ParseWithOptions(&cfg, env.Options{Environment: rest}); err != nil {
			return cfg, errors.Join(append(errs, err)...)
		}
	}
	// "a, b" must not make an origin " b" that never matches.
	for i, o := range cfg.AllowedOrigins {
		cfg.AllowedOrigins[i] = strings.TrimSpace(o)
	}
	return cfg, errors.Join(append(errs, cfg.validate())...)
}

func (c config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Port >= 0 && c.Port <= 65535, "PORT=%d must be from 0 to 65535", c.Port)
	if c.RedisURL != "" {
		// The message never repeats the value: it may hold a password.
		_, err := redisconn.ParseURL(c.RedisURL)
		check(err == nil, "REDIS_URL is not a valid Redis address (host:port, redis://[user:pass@]host:port/db or rediss://...): %v", err)
	}
	check(redisPrefixPattern.MatchString(c.RedisPrefix), "REDIS_PREFIX=%q must be 1 to 64 letters, digits or _ . : - (it starts every key)", c.RedisPrefix)
	_, err := c.logLevel()
	check(err == nil, "%v", err)
	check(c.LogFormat == "text" || c.LogFormat == "json", "LOG_FORMAT=%q must be text or json", c.LogFormat)
	// Slices, not maps, so the errors come out in the same order each time.
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"HEARTBEAT_INTERVAL", c.HeartbeatInterval}, {"PONG_TIMEOUT", c.PongTimeout},
		{"WRITE_TIMEOUT", c.WriteTimeout}, {"SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
		{"INBOX_MAX_AGE", c.InboxMaxAge}, {"HISTORY_MAX_AGE", c.HistoryMaxAge}, {"IDEMPOTENCY_TTL", c.IdempotencyTTL},
		{"IDEMPOTENCY_CLAIM_LEASE", c.IdempotencyClaimLease},
		{"PRESENCE_HEARTBEAT", c.PresenceHeartbeat}, {"PRESENCE_LAPSE", c.PresenceLapse},
		{"ANALYTICS_RETENTION", c.AnalyticsRetention}, {"INSTANCE_HEARTBEAT", c.InstanceHeartbeat}, {"INSTANCE_LAPSE", c.InstanceLapse},
		{"READ_HEADER_TIMEOUT", c.ReadHeaderTimeout}, {"IDLE_TIMEOUT", c.IdleTimeout},
	} {
		check(d.value > 0, "%s=%s must be a positive duration such as 30s", d.name, d.value)
	}
	for _, n := range []struct {
		name  string
		value int64
	}{
		{"INBOX_MAX_PER_USER", int64(c.InboxMaxPerUser)}, {"INBOX_MAX_PAGE_SIZE", int64(c.InboxMaxPageSize)},
		{"HISTORY_MAX_PER_CHANNEL", int64(c.HistoryMaxPerChannel)}, {"MAX_BODY_BYTES", c.MaxBodyBytes},
		{"MAX_FRAME_BYTES", c.MaxFrameBytes}, {"MAX_CHANNELS_PER_CONNECTION", int64(c.MaxChannels)},
		{"CLIENT_QUEUE_SIZE", int64(c.ClientQueueSize)}, {"MAX_HEADER_BYTES", int64(c.MaxHeaderBytes)},
		{"PRESENCE_MAX_MEMBERS", int64(c.PresenceMaxMembers)}, {"ANALYTICS_MAX_TYPES", int64(c.AnalyticsMaxTypes)},
	} {
		check(n.value > 0, "%s=%d must be a positive number", n.name, n.value)
	}
	// The body's own object is level 1 and channels or data level 2; past
	// 10,000 encoding/json refuses by itself.
	check(c.MaxJSONDepth >= 2 && c.MaxJSONDepth <= 10000, "MAX_JSON_DEPTH=%d must be from 2 to 10000", c.MaxJSONDepth)
	check(len(c.AllowedOrigins) > 0, "ALLOWED_ORIGINS must list origins or be *")
	check(!slices.Contains(c.AllowedOrigins, ""), "ALLOWED_ORIGINS=%q has an empty entry", strings.Join(c.AllowedOrigins, ","))

	// Security. No message repeats a secret's value.
	if c.JWTSecret != "" {
		check(len(c.JWTSecret) >= auth.MinSecretBytes, "JWT_SECRET is %d bytes; it must be at least %d (for example: openssl rand -hex 32)",
			len(c.JWTSecret), auth.MinSecretBytes)
		// Browsers locked while anyone may send, schedule and subscribe
		// would be security in appearance only.
		check(c.APIKey != "", "JWT_SECRET is set but API_KEY is not: the backend endpoints (send, schedule, subscribe) would stay open to anyone; set API_KEY too")
	}
	if c.APIKey != "" {
		check(len(c.APIKey) >= minAPIKeyBytes, "API_KEY is %d bytes; it must be at least %d (for example: openssl rand -hex 32)", len(c.APIKey), minAPIKeyBytes)
		// HTTP trims a header value: such a key could never match.
		check(strings.TrimSpace(string(c.APIKey)) == string(c.APIKey), "API_KEY starts or ends with whitespace, which no request can carry")
	}
	// A day is the unit, and a query reaches back at most a year.
	check(c.AnalyticsRetention <= 0 || c.AnalyticsRetention >= 24*time.Hour && c.AnalyticsRetention <= 365*24*time.Hour,
		"ANALYTICS_RETENTION=%s must be from 24h to 8760h (a year)", c.AnalyticsRetention)
	// An instance beating every heartbeat must not lapse between two beats
	// on a busy machine.
	check(c.InstanceHeartbeat <= 0 || c.InstanceLapse >= 2*c.InstanceHeartbeat,
		"INSTANCE_LAPSE=%s must be at least twice INSTANCE_HEARTBEAT=%s", c.InstanceLapse, c.InstanceHeartbeat)
	check(c.PusherTimestampWindow > 0, "PUSHER_TIMESTAMP_WINDOW=%s must be a positive duration such as 600s", c.PusherTimestampWindow)
	if c.PusherAppID != "" || c.PusherAppKey != "" || c.PusherAppSecret != "" {
		check(c.PusherAppID != "" && c.PusherAppKey != "" && c.PusherAppSecret != "",
			"PUSHER_APP_ID, PUSHER_APP_KEY and PUSHER_APP_SECRET go together: set all three (the same values as Laravel's REVERB_APP_* or PUSHER_APP_*), or none")
		if app := c.pusherApp(); app != nil {
			check(app.Validate() == nil, "PUSHER_APP_*: %v", app.Validate())
		}
	}
	if c.LaravelRedisURL != "" {
		_, err := redisconn.ParseURL(c.LaravelRedisURL)
		check(err == nil, "LARAVEL_REDIS_URL is not a valid Redis address (host:port, redis://[user:pass@]host:port/db or rediss://...): %v", err)
		check(c.LaravelRedisPrefix != "", "LARAVEL_REDIS_URL is set but LARAVEL_REDIS_PREFIX is not: set it to Laravel's Redis prefix (database.redis.options.prefix, e.g. laravel_database_)")
	}
	if c.LaravelRedisPrefix != "" {
		check(c.LaravelRedisURL != "" || c.RedisURL != "", "LARAVEL_REDIS_PREFIX is set but neither LARAVEL_REDIS_URL nor REDIS_URL says which Redis Laravel broadcasts on")
	}
	check(laravelPrefixPattern.MatchString(c.LaravelRedisPrefix) || c.LaravelRedisPrefix == "",
		"LARAVEL_REDIS_PREFIX=%q must be 1 to 64 letters, digits or _ . : - (Laravel's Redis prefix)", c.LaravelRedisPrefix)
	check(c.LaravelUserChannelPrefix != "" && pusher.ValidChannelName("private-"+c.LaravelUserChannelPrefix+"1"),
		"LARAVEL_USER_CHANNEL_PREFIX=%q must make valid channel names (private-<prefix><id>)", c.LaravelUserChannelPrefix)
	check((c.TLSCertFile == "") == (c.TLSKeyFile == ""), "TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve TLS, or neither")
	check(cookieNamePattern.MatchString(c.AuthCookie), "AUTH_COOKIE=%q is not a valid cookie name", c.AuthCookie)
	check(c.MaxConnectionsPerUser >= 0, "MAX_CONNECTIONS_PER_USER=%d must be 0 (no bound) or more", c.MaxConnectionsPerUser)
	check(c.MaxPendingSchedulesPerUser >= 0, "MAX_PENDING_SCHEDULES_PER_USER=%d must be 0 (no bound) or more", c.MaxPendingSchedulesPerUser)
	check(c.MaxPendingSchedules >= 0, "MAX_PENDING_SCHEDULES=%d must be 0 (no bound) or more", c.MaxPendingSchedules)
	for _, r := range []struct {
		name  string
		rate  float64
		burst int
	}{
		{"RATE_CONNECTS_PER_ADDR", c.RateConnectsPerAddr, c.RateConnectsPerAddrBurst},
		{"RATE_CONNECTS_PER_USER", c.RateConnectsPerUser, c.RateConnectsPerUserBurst},
		{"RATE_SENDS_PER_ADDR", c.RateSendsPerAddr, c.RateSendsPerAddrBurst},
		{"RATE_SENDS_PER_USER", c.RateSendsPerUser, c.RateSendsPerUserBurst},
	} {
		// NaN fails the comparison too.
		check(r.rate >= 0 && !math.IsInf(r.rate, 1), "%s=%v must be 0 (no limit) or a number of events per second", r.name, r.rate)
		check(r.burst >= 1, "%s_BURST=%d must be at least 1", r.name, r.burst)
	}
	return errors.Join(errs...)
}

// logLevel is LOG_LEVEL, or else what GIN_MODE implies. A bad GIN_MODE is
// an error even when LOG_LEVEL overrides it: the operator meant something.
func (c config) logLevel() (slog.Level, error) {
	var level slog.Level
	var errs []error
	switch c.GinMode {
	case "", "release", "production":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "test":
		level = slog.LevelWarn
	default:
		errs = append(errs, fmt.Errorf("GIN_MODE=%q must be release (or production), debug or test", c.GinMode))
	}
	if c.LogLevel != "" {
		if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q must be debug, info, warn or error", c.LogLevel))
		}
	}
	return level, errors.Join(errs...)
}

// scheduleLimits bound the pending schedules.
func (c config) scheduleLimits() schedule.Limits {
	return schedule.Limits{PerUser: c.MaxPendingSchedulesPerUser, Total: c.MaxPendingSchedules}
}

// idempotencyLimits are the Idempotency-Key store's bounds.
func (c config) idempotencyLimits() idempotency.Limits {
	return idempotency.Limits{TTL: c.IdempotencyTTL, ClaimLease: c.IdempotencyClaimLease}
}
