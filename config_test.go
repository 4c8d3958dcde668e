package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/schedule"
	"notification-service/transport"
)

func TestLoadConfigDefaults(t *testing.T) {
	is := is.New(t)
	cfg, err := loadConfig(map[string]string{})
	is.NoErr(err)
	is.Equal(cfg, config{
		Port:                     8080,
		RedisPrefix:              "notif:",
		LogFormat:                "text",
		HeartbeatInterval:        30 * time.Second,
		PongTimeout:              10 * time.Second,
		WriteTimeout:             10 * time.Second,
		ShutdownTimeout:          15 * time.Second,
		InboxMaxPerUser:          1000,
		InboxMaxAge:              720 * time.Hour,
		InboxMaxPageSize:         200,
		HistoryMaxPerChannel:     1000,
		HistoryMaxAge:            24 * time.Hour,
		IdempotencyTTL:           24 * time.Hour,
		IdempotencyClaimLease:    5 * time.Second,
		PusherTimestampWindow:    600 * time.Second,
		PresenceMaxMembers:       100,
		PresenceHeartbeat:        5 * time.Second,
		PresenceLapse:            15 * time.Second,
		AnalyticsRetention:       720 * time.Hour,
		AnalyticsMaxTypes:        100,
		InstanceHeartbeat:        time.Second,
		InstanceLapse:            5 * time.Second,
		LaravelUserChannelPrefix: "App.Models.User.",
		MaxBodyBytes:             65536,
		MaxFrameBytes:            16384,
		MaxChannels:              100,
		ClientQueueSize:          256,
		AllowedOrigins:           []string{"*"},
		MaxJSONDepth:             32,
		MaxHeaderBytes:           16384,
		ReadHeaderTimeout:        10 * time.Second,
		IdleTimeout:              120 * time.Second,

		MaxPendingSchedulesPerUser: 1000,
		MaxPendingSchedules:        100000,

		// Security: open mode, with bounds on.
		AuthCookie:               "notif_token",
		MaxConnectionsPerUser:    20,
		RateConnectsPerAddr:      50,
		RateConnectsPerAddrBurst: 500,
		RateConnectsPerUser:      2,
		RateConnectsPerUserBurst: 20,
		RateSendsPerAddr:         1000,
		RateSendsPerAddrBurst:    2000,
		RateSendsPerUser:         10,
		RateSendsPerUserBurst:    100,
	})
	level, err := cfg.logLevel()
	is.NoErr(err)
	is.Equal(level, slog.LevelInfo)
}

// everyVariable sets every variable loadConfig reads (but REDIS_URL, which
// would need a Redis to start) to a value other than its default.
var everyVariable = map[string]string{
	"PORT":                        "9090",
	"GIN_MODE":                    "debug",
	"LOG_LEVEL":                   "warn",
	"LOG_FORMAT":                  "json",
	"HEARTBEAT_INTERVAL":          "5s",
	"PONG_TIMEOUT":                "3s",
	"WRITE_TIMEOUT":               "4s",
	"SHUTDOWN_TIMEOUT":            "20s",
	"INBOX_MAX_PER_USER":          "50",
	"INBOX_MAX_AGE":               "48h",
	"INBOX_MAX_PAGE_SIZE":         "25",
	"HISTORY_MAX_PER_CHANNEL":     "500",
	"HISTORY_MAX_AGE":             "2h30m",
	"IDEMPOTENCY_TTL":             "1h",
	"IDEMPOTENCY_CLAIM_LEASE":     "2s",
	"MAX_BODY_BYTES":              "1024",
	"MAX_FRAME_BYTES":             "2048",
	"MAX_CHANNELS_PER_CONNECTION": "10",
	"CLIENT_QUEUE_SIZE":           "32",
	"ALLOWED_ORIGINS":             "https://a.example,https://b.example",
	"MAX_JSON_DEPTH":              "8",
	"MAX_HEADER_BYTES":            "4096",
	"READ_HEADER_TIMEOUT":         "3s",
	"IDLE_TIMEOUT":                "1m",
	"REDIS_PREFIX":                "staging:",

	// Schedules.
	"MAX_PENDING_SCHEDULES_PER_USER": "20",
	"MAX_PENDING_SCHEDULES":          "0",

	// Security.
	"JWT_SECRET":                   testJWTSecret,
	"API_KEY":                      testAPIKey,
	"AUTH_COOKIE":                  "session_token",
	"MAX_CONNECTIONS_PER_USER":     "5",
	"RATE_CONNECTS_PER_ADDR":       "0.5",
	"RATE_CONNECTS_PER_ADDR_BURST": "3",
	"RATE_CONNECTS_PER_USER":       "0",
	"RATE_CONNECTS_PER_USER_BURST": "4",
	"RATE_SENDS_PER_ADDR":          "200",
	"RATE_SENDS_PER_ADDR_BURST":    "400",
	"RATE_SENDS_PER_USER":          "1.5",
	"RATE_SENDS_PER_USER_BURST":    "6",
	"TRUST_FORWARDED_FOR":          "true",
	"DEBUG_PPROF_ADDR":             "127.0.0.1:6060",
	"TLS_CERT_FILE":                "/etc/tls/cert.pem",
	"TLS_KEY_FILE":                 "/etc/tls/key.pem",
	"HTTP2_CLEARTEXT":              "true",
	"PUSHER_APP_ID":                "1001",
	"PUSHER_APP_KEY":               "app-key",
	"PUSHER_APP_SECRET":            "app-secret-0123456789",
	"PUSHER_TIMESTAMP_WINDOW":      "5m",
	"PRESENCE_MAX_MEMBERS":         "50",
	"PRESENCE_HEARTBEAT":           "1s",
	"PRESENCE_LAPSE":               "4s",
	"LARAVEL_REDIS_URL":            "redis://laravel-redis:6379/1",
	"LARAVEL_REDIS_PREFIX":         "laravel_database_",
	"LARAVEL_USER_CHANNEL_PREFIX":  "App.Models.Admin.",
	"ANALYTICS_RETENTION":          "168h",
	"ANALYTICS_MAX_TYPES":          "20",
	"INSTANCE_HEARTBEAT":           "2s",
	"INSTANCE_LAPSE":               "10s",
}

// The secrets of the configuration tests; errors must never repeat them.
const (
	testJWTSecret = "config-test-jwt-secret-0123456789abcdef"
	testAPIKey    = "config-test-api-key-0123"
)

func TestLoadConfigParsesEveryVariable(t *testing.T) {
	is := is.New(t)
	cfg, err := loadConfig(everyVariable)
	is.NoErr(err)
	is.Equal(cfg, config{
		Port:                  9090,
		RedisPrefix:           "staging:",
		GinMode:               "debug",
		LogLevel:              "warn",
		LogFormat:             "json",
		HeartbeatInterval:     5 * time.Second,
		PongTimeout:           3 * time.Second,
		WriteTimeout:          4 * time.Second,
		ShutdownTimeout:       20 * time.Second,
		InboxMaxPerUser:       50,
		InboxMaxAge:           48 * time.Hour,
		InboxMaxPageSize:      25,
		HistoryMaxPerChannel:  500,
		HistoryMaxAge:         150 * time.Minute,
		IdempotencyTTL:        time.Hour,
		IdempotencyClaimLease: 2 * time.Second,
		MaxBodyBytes:          1024,
		MaxFrameBytes:         2048,
		MaxChannels:           10,
		ClientQueueSize:       32,
		AllowedOrigins:        []string{"https://a.example", "https://b.example"},
		MaxJSONDepth:          8,
		MaxHeaderBytes:        4096,
		ReadHeaderTimeout:     3 * time.Second,
		IdleTimeout:           time.Minute,

		MaxPendingSchedulesPerUser: 20,
		MaxPendingSchedules:        0,

		JWTSecret:                testJWTSecret,
		APIKey:                   testAPIKey,
		AuthCookie:               "session_token",
		MaxConnectionsPerUser:    5,
		RateConnectsPerAddr:      0.5,
		RateConnectsPerAddrBurst: 3,
		RateConnectsPerUser:      0,
		RateConnectsPerUserBurst: 4,
		RateSendsPerAddr:         200,
		RateSendsPerAddrBurst:    400,
		RateSendsPerUser:         1.5,
		RateSendsPerUserBurst:    6,
		TrustForwardedFor:        true,
		DebugPprofAddr:           "127.0.0.1:6060",
		TLSCertFile:              "/etc/tls/cert.pem",
		TLSKeyFile:               "/etc/tls/key.pem",
		HTTP2Cleartext:           true,
		PusherAppID:              "1001",
		PusherAppKey:             "app-key",
		PusherAppSecret:          "app-secret-0123456789",
		PusherTimestampWindow:    5 * time.Minute,
		PresenceMaxMembers:       50,
		PresenceHeartbeat:        time.Second,
		PresenceLapse:            4 * time.Second,
		LaravelRedisURL:          "redis://laravel-redis:6379/1",
		LaravelRedisPrefix:       "laravel_database_",
		LaravelUserChannelPrefix: "App.Models.Admin.",
		AnalyticsRetention:       168 * time.Hour,
		AnalyticsMaxTypes:        20,
		InstanceHeartbeat:        2 * time.Second,
		InstanceLapse:            10 * time.Second,
	})
}

// A field added to config without a variable in everyVariable would go
// untested: this keeps the table above complete.
func TestEveryConfigFieldIsAVariableUnderTest(t *testing.T) {
	fields := reflect.TypeFor[config]()
	for i := range fields.NumField() {
		name, _, _ := strings.Cut(fields.Field(i).Tag.Get("env"), ",")
		if name == "" {
			t.Errorf("field %s has no env tag", fields.Field(i).Name)
			continue
		}
		if _, ok := everyVariable[name]; !ok && name != "REDIS_URL" {
			t.Errorf("%s is not in everyVariable", name)
		}
	}
}

func TestLoadConfigAllowedOrigins(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"*", []string{"*"}},
		{"https://app.example", []string{"https://app.example"}},
		{"https://a.example,https://b.example", []string{"https://a.example", "https://b.example"}},
		// An operator's "a, b" must not become an origin " b" that never matches.
		{"https://a.example, https://b.example ", []string{"https://a.example", "https://b.example"}},
	} {
		t.Run(tc.value, func(t *testing.T) {
			is := is.New(t)
			cfg, err := loadConfig(map[string]string{"ALLOWED_ORIGINS": tc.value})
			is.NoErr(err)
			is.Equal(cfg.AllowedOrigins, tc.want)
		})
	}
}

func TestLogLevelFromGinModeAndLogLevel(t *testing.T) {
	for _, tc := range []struct {
		ginMode, logLevel string
		want              slog.Level
	}{
		{"", "", slog.LevelInfo},
		{"release", "", slog.LevelInfo},
		{"production", "", slog.LevelInfo},
		{"debug", "", slog.LevelDebug},
		{"test", "", slog.LevelWarn},
		// LOG_LEVEL overrides whatever GIN_MODE implies.
		{"", "debug", slog.LevelDebug},
		{"debug", "error", slog.LevelError},
		{"release", "debug", slog.LevelDebug},
		{"test", "info", slog.LevelInfo},
		{"", "WARN", slog.LevelWarn},
	} {
		t.Run(tc.ginMode+"/"+tc.logLevel, func(t *testing.T) {
			is := is.New(t)
			environ := map[string]string{}
			if tc.ginMode != "" {
				environ["GIN_MODE"] = tc.ginMode
			}
			if tc.logLevel != "" {
				environ["LOG_LEVEL"] = tc.logLevel
			}
			cfg, err := loadConfig(environ)
			is.NoErr(err)
			level, err := cfg.logLevel()
			is.NoErr(err)
			is.Equal(level, tc.want)
		})
	}
}

func TestNewLoggerHonoursFormatAndLevel(t *testing.T) {
	is := is.New(t)

	cfg, err := loadConfig(map[string]string{"LOG_FORMAT": "json", "GIN_MODE": "test"})
	is.NoErr(err)
	var out bytes.Buffer
	logger := newLogger(cfg, &out)
	logger.Info("hidden at warn")
	logger.Warn("shown", slog.String("k", "v"))
	var rec map[string]any
	is.NoErr(json.Unmarshal(out.Bytes(), &rec)) // exactly one JSON record
	is.Equal(rec["msg"], "shown")
	is.Equal(rec["k"], "v")

	cfg, err = loadConfig(map[string]string{"LOG_LEVEL": "debug"})
	is.NoErr(err)
	out.Reset()
	newLogger(cfg, &out).Debug("detail", slog.String("k", "v"))
	is.True(strings.Contains(out.String(), "level=DEBUG msg=detail k=v")) // text format by default
}

func TestLoadConfigEmptyRedisURLMeansMemory(t *testing.T) {
	is := is.New(t)
	cfg, err := loadConfig(map[string]string{"REDIS_URL": ""})
	is.NoErr(err)
	is.Equal(cfg.RedisURL, "")
}

func TestRunRefusesBadConfigWithoutListening(t *testing.T) {
	is := is.New(t)
	// Hold a port: had run tried to listen on it, it would fail with
	// "address in use" instead of naming the bad variable.
	held, err := net.Listen("tcp", ":0")
	is.NoErr(err)
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)

	var stdout bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err = run(ctx, map[string]string{"PORT": port, "LOG_FORMAT": "xml"}, &stdout)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "LOG_FORMAT"))
	is.True(!strings.Contains(err.Error(), "listen"))
	is.Equal(stdout.String(), "") // never logged "listening"
	is.NoErr(ctx.Err())           // returned at once, not when the context ended

	// The control: a good config on the held port does try to listen.
	err = run(ctx, map[string]string{"PORT": port}, &stdout)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "listen on PORT="+port))
}

func envString(environ map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(environ)) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + environ[k])
	}
	return b.String()
}

// A secret never appears in an error, a formatted config or a log record,
// whatever is wrong with it.
func TestConfigNeverShowsSecrets(t *testing.T) {
	is := is.New(t)
	for _, environ := range []map[string]string{
		{"JWT_SECRET": "too-short-jwt-secret", "API_KEY": "too-short-key"},
		{"JWT_SECRET": testJWTSecret},
		{"API_KEY": " " + testAPIKey + " "},
	} {
		_, err := loadConfig(environ)
		is.True(err != nil)
		for _, v := range environ {
			is.True(!strings.Contains(err.Error(), strings.TrimSpace(v)))
		}
	}
	cfg, err := loadConfig(everyVariable)
	is.NoErr(err)
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("config", slog.Any("jwt", cfg.JWTSecret), slog.Any("key", cfg.APIKey))
	for _, shown := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%q", cfg.APIKey), out.String()} {
		is.True(!strings.Contains(shown, testJWTSecret))
		is.True(!strings.Contains(shown, testAPIKey))
	}
	is.True(strings.Contains(out.String(), "[redacted]"))
	is.Equal(string(cfg.JWTSecret), testJWTSecret) // the value is there for who converts it
}

// API_KEY alone is allowed (browsers stay open); JWT_SECRET needs it.
func TestLoadConfigAuthModes(t *testing.T) {
	is := is.New(t)
	_, err := loadConfig(map[string]string{"API_KEY": testAPIKey})
	is.NoErr(err)
	_, err = loadConfig(map[string]string{"JWT_SECRET": testJWTSecret, "API_KEY": testAPIKey})
	is.NoErr(err)
	_, err = loadConfig(map[string]string{"JWT_SECRET": testJWTSecret})
	is.True(err != nil)
	// 0 disables a rate and the connection bound: the load generator's
	// setting.
	cfg, err := loadConfig(map[string]string{"RATE_CONNECTS_PER_ADDR": "0", "RATE_SENDS_PER_USER": "0", "MAX_CONNECTIONS_PER_USER": "0",
		"MAX_PENDING_SCHEDULES_PER_USER": "0"})
	is.NoErr(err)
	is.Equal(cfg.rates().ConnectsPerAddr.PerSecond, 0.0)
	is.Equal(cfg.rates().SendsPerUser.PerSecond, 0.0)
	is.Equal(cfg.rates().SendsPerAddr, transport.Rate{PerSecond: 1000, Burst: 2000})
	is.Equal(cfg.scheduleLimits(), schedule.Limits{PerUser: 0, Total: 100000})
}
