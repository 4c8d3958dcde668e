package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// MinVersion is the oldest Redis the service runs on. Every command and
// option it sends exists in Redis 6.0: the Redis tests of the broker, inbox
// and schedule packages, and of the whole service, record each command and
// check it against Redis's own COMMAND DOCS (internal/redistest, ValidOn).
const MinVersion = "6.0.0"

// ErrVersionUnknown means Redis would not say its version (INFO refused,
// or an answer without redis_version): the caller decides whether to go on.
var ErrVersionUnknown = errors.New("Redis does not say its version")

// CheckVersion reads redis_version from the answer to INFO server and
// refuses, naming the version found and the one needed, a Redis older than
// MinVersion.
func CheckVersion(info string) error {
	var found string
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			found = v
			break
		}
	}
	if found == "" {
		return fmt.Errorf("%w: INFO server has no redis_version", ErrVersionUnknown)
	}
	have, ok := parseVersion(found)
	if !ok {
		return fmt.Errorf("%w: redis_version %q is not a version", ErrVersionUnknown, found)
	}
	need, _ := parseVersion(MinVersion)
	for i := range have {
		if have[i] != need[i] {
			if have[i] < need[i] {
				return fmt.Errorf("Redis %s is too old: the service needs Redis %s or later", found, MinVersion)
			}
			return nil
		}
	}
	return nil
}

// parseVersion reads "6.0.16" (and "7", "7.2") into its three numbers.
func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	parts := strings.Split(v, ".")
	if len(parts) > 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// RequireVersion asks client's Redis for its version and returns
// CheckVersion's verdict: nil, an error naming both versions, an error
// wrapping ErrVersionUnknown when Redis refuses INFO, or one wrapping
// store.ErrUnavailable when it cannot be reached.
func RequireVersion(ctx context.Context, client *redis.Client) error {
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		if Unavailable(err) {
			return Wrap("read the Redis version", err)
		}
		return fmt.Errorf("%w: INFO server: %w", ErrVersionUnknown, err)
	}
	return CheckVersion(info)
}
