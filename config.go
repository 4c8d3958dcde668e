package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// config is every setting, read once from the environment (DESIGN §7).
type config struct {
	Port     int    `env:"PORT" envDefault:"8080"`
	RedisURL string `env:"REDIS_URL"`
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

	MaxBodyBytes    int64    `env:"MAX_BODY_BYTES" envDefault:"65536"`
	MaxFrameBytes   int64    `env:"MAX_FRAME_BYTES" envDefault:"16384"`
	MaxChannels     int      `env:"MAX_CHANNELS_PER_CONNECTION" envDefault:"100"`
	ClientQueueSize int      `env:"CLIENT_QUEUE_SIZE" envDefault:"256"`
	AllowedOrigins  []string `env:"ALLOWED_ORIGINS" envDefault:"*" envSeparator:","`
}

// mayBeEmpty says whether an empty value of a variable means something
// (an empty REDIS_URL is memory mode).
func mayBeEmpty(name string) bool { return name == "REDIS_URL" }

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
	check(c.RedisURL == "", "REDIS_URL is set, but this build runs in memory only: Redis mode is not implemented yet; unset REDIS_URL")
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
		{"CLIENT_QUEUE_SIZE", int64(c.ClientQueueSize)},
	} {
		check(n.value > 0, "%s=%d must be a positive number", n.name, n.value)
	}
	check(len(c.AllowedOrigins) > 0, "ALLOWED_ORIGINS must list origins or be *")
	check(!slices.Contains(c.AllowedOrigins, ""), "ALLOWED_ORIGINS=%q has an empty entry", strings.Join(c.AllowedOrigins, ","))
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
