package main

import (
	"strings"
	"testing"

	"github.com/matryer/is"
)

// A bad configuration is refused with every bad variable named, each once.

func TestLoadConfigRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		environ map[string]string
		// want are substrings of the error: the variable, and what is wrong.
		want []string
	}{
		{map[string]string{"PORT": "abc"}, []string{`PORT="abc"`}},
		{map[string]string{"PUSHER_APP_ID": "1", "PUSHER_APP_KEY": "k"}, []string{"PUSHER_APP_ID, PUSHER_APP_KEY and PUSHER_APP_SECRET go together"}},
		{map[string]string{"PUSHER_APP_ID": "1", "PUSHER_APP_KEY": "k", "PUSHER_APP_SECRET": "short"}, []string{"PUSHER_APP_*"}},
		{map[string]string{"LARAVEL_REDIS_PREFIX": "laravel_database_"}, []string{"neither LARAVEL_REDIS_URL nor REDIS_URL"}},
		{map[string]string{"LARAVEL_REDIS_URL": "localhost:6380"}, []string{"LARAVEL_REDIS_PREFIX is not"}},
		{map[string]string{"LARAVEL_REDIS_URL": "localhost:6380", "LARAVEL_REDIS_PREFIX": "app*"}, []string{`LARAVEL_REDIS_PREFIX="app*"`}},
		{map[string]string{"LARAVEL_USER_CHANNEL_PREFIX": "App Models"}, []string{"LARAVEL_USER_CHANNEL_PREFIX"}},
		{map[string]string{"TLS_CERT_FILE": "/c.pem"}, []string{"TLS_CERT_FILE and TLS_KEY_FILE go together"}},
		{map[string]string{"PORT": "70000"}, []string{"PORT=70000"}},
		{map[string]string{"PORT": "-1"}, []string{"PORT=-1"}},
		{map[string]string{"PORT": " 8080"}, []string{`PORT=" 8080"`}},
		{map[string]string{"PORT": ""}, []string{"PORT is set but empty"}},
		{map[string]string{"PORT": "  "}, []string{"PORT is set but empty"}},
		{map[string]string{"HEARTBEAT_INTERVAL": "soon"}, []string{`HEARTBEAT_INTERVAL="soon"`}},
		{map[string]string{"HEARTBEAT_INTERVAL": "30"}, []string{`HEARTBEAT_INTERVAL="30"`}},
		{map[string]string{"HEARTBEAT_INTERVAL": "-1s"}, []string{"HEARTBEAT_INTERVAL=-1s", "positive"}},
		{map[string]string{"HEARTBEAT_INTERVAL": "0s"}, []string{"HEARTBEAT_INTERVAL=0s", "positive"}},
		{map[string]string{"HEARTBEAT_INTERVAL": ""}, []string{"HEARTBEAT_INTERVAL is set but empty"}},
		{map[string]string{"PONG_TIMEOUT": "0"}, []string{"PONG_TIMEOUT"}},
		{map[string]string{"WRITE_TIMEOUT": "-5s"}, []string{"WRITE_TIMEOUT"}},
		{map[string]string{"SHUTDOWN_TIMEOUT": "never"}, []string{`SHUTDOWN_TIMEOUT="never"`}},
		{map[string]string{"INBOX_MAX_AGE": "0s"}, []string{"INBOX_MAX_AGE"}},
		{map[string]string{"HISTORY_MAX_AGE": "-1h"}, []string{"HISTORY_MAX_AGE"}},
		{map[string]string{"IDEMPOTENCY_TTL": "x"}, []string{"IDEMPOTENCY_TTL"}},
		{map[string]string{"CLIENT_QUEUE_SIZE": "0"}, []string{"CLIENT_QUEUE_SIZE=0", "positive"}},
		{map[string]string{"ANALYTICS_RETENTION": "12h"}, []string{"ANALYTICS_RETENTION=12h0m0s must be from 24h"}},
		{map[string]string{"ANALYTICS_RETENTION": "9000h"}, []string{"ANALYTICS_RETENTION=9000h0m0s"}},
		{map[string]string{"ANALYTICS_RETENTION": "0s"}, []string{"ANALYTICS_RETENTION=0s", "positive"}},
		{map[string]string{"ANALYTICS_MAX_TYPES": "0"}, []string{"ANALYTICS_MAX_TYPES=0", "positive"}},
		{map[string]string{"INSTANCE_HEARTBEAT": "3s", "INSTANCE_LAPSE": "5s"}, []string{"INSTANCE_LAPSE=5s must be at least twice INSTANCE_HEARTBEAT=3s"}},
		{map[string]string{"INSTANCE_LAPSE": "-1s"}, []string{"INSTANCE_LAPSE=-1s", "positive"}},
		{map[string]string{"CLIENT_QUEUE_SIZE": "many"}, []string{`CLIENT_QUEUE_SIZE="many"`}},
		{map[string]string{"INBOX_MAX_PER_USER": "-1"}, []string{"INBOX_MAX_PER_USER"}},
		{map[string]string{"INBOX_MAX_PAGE_SIZE": "0"}, []string{"INBOX_MAX_PAGE_SIZE"}},
		{map[string]string{"HISTORY_MAX_PER_CHANNEL": "0"}, []string{"HISTORY_MAX_PER_CHANNEL"}},
		{map[string]string{"MAX_BODY_BYTES": "-5"}, []string{"MAX_BODY_BYTES=-5"}},
		{map[string]string{"MAX_BODY_BYTES": "1e6"}, []string{`MAX_BODY_BYTES="1e6"`}},
		{map[string]string{"MAX_FRAME_BYTES": "0"}, []string{"MAX_FRAME_BYTES"}},
		{map[string]string{"MAX_CHANNELS_PER_CONNECTION": "0"}, []string{"MAX_CHANNELS_PER_CONNECTION"}},
		{map[string]string{"LOG_FORMAT": "xml"}, []string{`LOG_FORMAT="xml"`, "text or json"}},
		{map[string]string{"LOG_FORMAT": ""}, []string{"LOG_FORMAT is set but empty"}},
		{map[string]string{"GIN_MODE": "banana"}, []string{`GIN_MODE="banana"`}},
		{map[string]string{"GIN_MODE": ""}, []string{"GIN_MODE is set but empty"}},
		// LOG_LEVEL wins over GIN_MODE, but a bad GIN_MODE is still a bad value.
		{map[string]string{"GIN_MODE": "banana", "LOG_LEVEL": "debug"}, []string{`GIN_MODE="banana"`}},
		{map[string]string{"LOG_LEVEL": "loud"}, []string{`LOG_LEVEL="loud"`}},
		{map[string]string{"LOG_LEVEL": ""}, []string{"LOG_LEVEL is set but empty"}},
		{map[string]string{"ALLOWED_ORIGINS": ""}, []string{"ALLOWED_ORIGINS is set but empty"}},
		{map[string]string{"ALLOWED_ORIGINS": ","}, []string{"ALLOWED_ORIGINS", "empty"}},
		{map[string]string{"ALLOWED_ORIGINS": "https://a.example,,https://b.example"}, []string{"ALLOWED_ORIGINS", "empty"}},
		{map[string]string{"REDIS_URL": "localhost"}, []string{"REDIS_URL", "host:port"}},
		{map[string]string{"REDIS_URL": "http://localhost:6379"}, []string{"REDIS_URL", "redis://"}},
		{map[string]string{"REDIS_URL": "redis://:hunter2@localhost:notaport/0"}, []string{"REDIS_URL"}},
		{map[string]string{"REDIS_PREFIX": "a{b}"}, []string{`REDIS_PREFIX="a{b}"`}},
		{map[string]string{"REDIS_PREFIX": ""}, []string{"REDIS_PREFIX is set but empty"}},
		{map[string]string{"MAX_JSON_DEPTH": "1"}, []string{"MAX_JSON_DEPTH=1", "from 2 to 10000"}},
		{map[string]string{"MAX_JSON_DEPTH": "10001"}, []string{"MAX_JSON_DEPTH=10001"}},
		{map[string]string{"MAX_JSON_DEPTH": "deep"}, []string{`MAX_JSON_DEPTH="deep"`}},
		{map[string]string{"MAX_HEADER_BYTES": "0"}, []string{"MAX_HEADER_BYTES=0", "positive"}},
		{map[string]string{"MAX_HEADER_BYTES": "16k"}, []string{`MAX_HEADER_BYTES="16k"`}},
		{map[string]string{"READ_HEADER_TIMEOUT": "0s"}, []string{"READ_HEADER_TIMEOUT=0s", "positive"}},
		{map[string]string{"READ_HEADER_TIMEOUT": "10"}, []string{`READ_HEADER_TIMEOUT="10"`}},
		{map[string]string{"IDLE_TIMEOUT": "-1m"}, []string{"IDLE_TIMEOUT=-1m0s", "positive"}},
		{map[string]string{"IDLE_TIMEOUT": ""}, []string{"IDLE_TIMEOUT is set but empty"}},
		// Security.
		{map[string]string{"JWT_SECRET": "short", "API_KEY": testAPIKey}, []string{"JWT_SECRET is 5 bytes", "at least 32"}},
		{map[string]string{"JWT_SECRET": testJWTSecret}, []string{"JWT_SECRET is set but API_KEY is not"}},
		{map[string]string{"JWT_SECRET": ""}, []string{"JWT_SECRET is set but empty"}},
		{map[string]string{"API_KEY": "short"}, []string{"API_KEY is 5 bytes", "at least 16"}},
		{map[string]string{"API_KEY": " " + testAPIKey}, []string{"API_KEY", "whitespace"}},
		{map[string]string{"API_KEY": ""}, []string{"API_KEY is set but empty"}},
		{map[string]string{"AUTH_COOKIE": "my token"}, []string{`AUTH_COOKIE="my token"`}},
		{map[string]string{"AUTH_COOKIE": "a;b"}, []string{`AUTH_COOKIE="a;b"`}},
		{map[string]string{"MAX_CONNECTIONS_PER_USER": "-1"}, []string{"MAX_CONNECTIONS_PER_USER=-1"}},
		{map[string]string{"MAX_CONNECTIONS_PER_USER": "lots"}, []string{`MAX_CONNECTIONS_PER_USER="lots"`}},
		{map[string]string{"MAX_PENDING_SCHEDULES_PER_USER": "-1"}, []string{"MAX_PENDING_SCHEDULES_PER_USER=-1"}},
		{map[string]string{"MAX_PENDING_SCHEDULES_PER_USER": "1k"}, []string{`MAX_PENDING_SCHEDULES_PER_USER="1k"`}},
		{map[string]string{"MAX_PENDING_SCHEDULES": "-5"}, []string{"MAX_PENDING_SCHEDULES=-5"}},
		{map[string]string{"MAX_PENDING_SCHEDULES": ""}, []string{"MAX_PENDING_SCHEDULES is set but empty"}},
		{map[string]string{"RATE_CONNECTS_PER_ADDR": "-1"}, []string{"RATE_CONNECTS_PER_ADDR=-1"}},
		{map[string]string{"RATE_CONNECTS_PER_USER": "NaN"}, []string{"RATE_CONNECTS_PER_USER=NaN"}},
		{map[string]string{"RATE_SENDS_PER_ADDR": "+Inf"}, []string{"RATE_SENDS_PER_ADDR=+Inf"}},
		{map[string]string{"RATE_SENDS_PER_USER": "10/s"}, []string{`RATE_SENDS_PER_USER="10/s"`}},
		{map[string]string{"RATE_SENDS_PER_USER_BURST": "0"}, []string{"RATE_SENDS_PER_USER_BURST=0", "at least 1"}},
		{map[string]string{"RATE_CONNECTS_PER_ADDR_BURST": "1.5"}, []string{`RATE_CONNECTS_PER_ADDR_BURST="1.5"`}},
		{map[string]string{"TRUST_FORWARDED_FOR": "yes"}, []string{`TRUST_FORWARDED_FOR="yes"`}},
	} {
		t.Run(envString(tc.environ), func(t *testing.T) {
			_, err := loadConfig(tc.environ)
			if err == nil {
				t.Fatalf("loadConfig(%v) accepted a bad value", tc.environ)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// One start-up names every bad variable, each once, whatever kind of
// mistake it is (empty, unparsable, out of range), so an operator fixes
// them in one go.
func TestLoadConfigNamesEveryBadVariable(t *testing.T) {
	is := is.New(t)
	bad := map[string]string{
		"PORT":               "abc",   // unparsable
		"SHUTDOWN_TIMEOUT":   "later", // unparsable
		"HEARTBEAT_INTERVAL": "-1s",   // out of range
		"CLIENT_QUEUE_SIZE":  "0",     // out of range
		"LOG_FORMAT":         "xml",   // not a choice
		"GIN_MODE":           "banana",
		"LOG_LEVEL":          "loud",
		"MAX_BODY_BYTES":     "", // set but empty
		"REDIS_URL":          "localhost",
	}
	environ := map[string]string{"PONG_TIMEOUT": "1s"} // a good one among them
	for k, v := range bad {
		environ[k] = v
	}
	_, err := loadConfig(environ)
	is.True(err != nil)
	lines := strings.Split(err.Error(), "\n")
	for name := range bad {
		named := 0
		for _, line := range lines {
			if strings.HasPrefix(line, name+"=") || strings.HasPrefix(line, name+" ") {
				named++
			}
		}
		if named != 1 {
			t.Errorf("%s is named by %d lines of the error, want 1:\n%v", name, named, err)
		}
	}
	is.Equal(len(lines), len(bad)) // nothing about the good variable, no line twice
}
