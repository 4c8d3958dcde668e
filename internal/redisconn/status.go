package redisconn

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Status is how Redis looks from this instance, for the dashboard.
type Status struct {
	// Up is false when Redis did not answer; then only Error says why.
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
	// PingMillis is the round trip of a PING.
	PingMillis float64 `json:"ping_ms"`
	Version    string  `json:"version,omitempty"`
	// UptimeSeconds, UsedMemory (bytes), MaxMemory (0: no bound) and
	// Clients come from INFO.
	UptimeSeconds int64  `json:"uptime_seconds,omitempty"`
	UsedMemory    int64  `json:"used_memory,omitempty"`
	MaxMemory     int64  `json:"maxmemory"`
	EvictionRule  string `json:"maxmemory_policy,omitempty"`
	Clients       int64  `json:"connected_clients,omitempty"`
}

// ReadStatus pings Redis and reads a few INFO fields (one section a call:
// Redis 6.0 takes no more), in one pipeline.
func ReadStatus(ctx context.Context, client *redis.Client) Status {
	pipe := client.Pipeline()
	ping := pipe.Ping(ctx)
	sections := []*redis.StringCmd{pipe.Info(ctx, "server"), pipe.Info(ctx, "memory"), pipe.Info(ctx, "clients")}
	start := time.Now()
	_, err := pipe.Exec(ctx)
	elapsed := time.Since(start)
	if ping.Err() != nil {
		return Status{Error: Wrap("redis: ping", ping.Err()).Error()}
	}
	s := Status{Up: true, PingMillis: float64(elapsed.Microseconds()) / 1000}
	if err != nil {
		return s // INFO refused (managed Redis may rename it): the ping says enough
	}
	fields := make(map[string]string)
	for _, sec := range sections {
		for _, line := range strings.Split(sec.Val(), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				fields[k] = v
			}
		}
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(fields[k], 10, 64); return n }
	s.Version = fields["redis_version"]
	s.UptimeSeconds = num("uptime_in_seconds")
	s.UsedMemory = num("used_memory")
	s.MaxMemory = num("maxmemory")
	s.EvictionRule = fields["maxmemory_policy"]
	s.Clients = num("connected_clients")
	return s
}
