package idempotency

// The Redis store lets a retried send reach any instance and still find the
// first attempt's claim or result. Each key is one hash,
//
//	<prefix>idem:{<key>}   HASH  fp: fingerprint, done: "0" while claimed,
//	                             "1" once finished, result: the bytes
//
// and every operation is one Lua script, so checking and changing the record
// are one step: of many concurrent Begins exactly one claims.
//
// Time is Redis's own: a claim is written with PEXPIRE ClaimTimeout and a
// result with PEXPIRE TTL, so the record disappears by itself, no instance's
// clock is involved and nothing sweeps. There is no owner token (the Store
// interface has none), so as with the memory store a Finish that comes after
// its claim expired and someone else claimed the key lands on the new claim;
// ClaimTimeout is far longer than any send, which keeps that theoretical.

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// Redis is the Store of the distributed mode, shared by every instance.
type Redis struct {
	client       *redis.Client
	prefix       redisconn.Prefix
	ttl          time.Duration
	claimTimeout time.Duration
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store keeping keys under prefix in the Redis behind
// client. A finished request is remembered for ttl (DefaultTTL if ttl is zero
// or less); a claim in progress is abandoned after ClaimTimeout, or after ttl
// if that is shorter. Both count in whole milliseconds, rounded up.
func NewRedis(client *redis.Client, prefix redisconn.Prefix, ttl time.Duration) *Redis {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Redis{client: client, prefix: prefix, ttl: ttl, claimTimeout: min(ClaimTimeout, ttl)}
}

// Begin replies 0 (claimed), 1 (mismatch), 2 (in progress) or 3 and the
// result (done). A fingerprint mismatch wins over "in progress", as in
// Memory: retrying cannot fix a reused key.
var beginScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'fp', 'done', 'result')
if not r[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'done', '0')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {0}
end
if r[1] ~= ARGV[1] then return {1} end
if r[2] ~= '1' then return {2} end
return {3, r[3] or ''}
`)

// Finish records the result only over a claim still in progress, and
// restarts the key's time: the TTL counts from the result.
var finishScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'done') ~= '0' then return 0 end
redis.call('HSET', KEYS[1], 'done', '1', 'result', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// Abort drops only a claim in progress, so a late Abort cannot erase a
// result and let the request run twice.
var abortScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'done') == '0' then redis.call('DEL', KEYS[1]) end
return 0
`)

// Begin implements Store.
func (r *Redis) Begin(ctx context.Context, key, fingerprint string) ([]byte, bool, error) {
	reply, err := beginScript.Run(ctx, r.client, []string{r.key(key)}, fingerprint, millis(r.claimTimeout)).Slice()
	if err != nil {
		return nil, false, redisconn.Wrap(fmt.Sprintf("idempotency: begin %q", key), err)
	}
	code, _ := reply[0].(int64)
	switch code {
	case 0:
		return nil, false, nil
	case 1:
		return nil, false, fmt.Errorf("begin %q: %w", key, ErrMismatch)
	case 2:
		return nil, false, fmt.Errorf("begin %q: %w", key, ErrInProgress)
	}
	if len(reply) < 2 {
		return nil, false, fmt.Errorf("idempotency: begin %q: unexpected reply %v", key, reply)
	}
	result, _ := reply[1].(string)
	return []byte(result), true, nil
}

// Finish implements Store. It fails if key has no claim in progress: never
// claimed, already finished or aborted, or expired after ClaimTimeout.
func (r *Redis) Finish(ctx context.Context, key string, result []byte) error {
	ok, err := finishScript.Run(ctx, r.client, []string{r.key(key)}, result, millis(r.ttl)).Int()
	if err != nil {
		return redisconn.Wrap(fmt.Sprintf("idempotency: finish %q", key), err)
	}
	if ok == 0 {
		return fmt.Errorf("finish %q: %w", key, errNotClaimed)
	}
	return nil
}

// Abort implements Store.
func (r *Redis) Abort(ctx context.Context, key string) error {
	err := abortScript.Run(ctx, r.client, []string{r.key(key)}).Err()
	return redisconn.Wrap(fmt.Sprintf("idempotency: abort %q", key), err)
}

// key puts the caller's key between braces: whatever it contains, it
// cannot be mistaken for another store's key under the same prefix.
func (r *Redis) key(key string) string { return r.prefix.Key("idem", "{"+key+"}") }

// millis is d in whole milliseconds, rounded up, for PEXPIRE: a claim
// timeout under a millisecond must not become "expire now".
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
