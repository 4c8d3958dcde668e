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
// A claim holds the token of the attempt that took it ("tok"), and Finish
// and Abort act only on their own claim. Time is Redis's own: a claim is
// written with PEXPIRE ClaimLease and a result with PEXPIRE TTL, so the
// record disappears by itself, no instance's clock is involved and nothing
// sweeps.

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// Redis is the Store of the distributed mode, shared by every instance.
type Redis struct {
	client *redis.Client
	prefix redisconn.Prefix
	limits Limits
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store keeping keys under prefix in the Redis behind
// client, within limits (counted in whole milliseconds, rounded up).
func NewRedis(client *redis.Client, prefix redisconn.Prefix, limits Limits) *Redis {
	return &Redis{client: client, prefix: prefix, limits: limits.withDefaults()}
}

// Begin replies 0 (claimed), 1 (mismatch), 2 and the claim's time left in
// ms (in progress) or 3 and the result (done). A fingerprint mismatch wins
// over "in progress", as in Memory: retrying cannot fix a reused key.
var beginScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'fp', 'done', 'result')
if not r[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'done', '0', 'tok', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {0}
end
if r[1] ~= ARGV[1] then return {1} end
if r[2] ~= '1' then return {2, redis.call('PTTL', KEYS[1])} end
return {3, r[3] or ''}
`)

// Finish records the result only over the caller's own claim, and restarts
// the key's time: the TTL counts from the result.
var finishScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'done', 'tok')
if r[1] ~= '0' or r[2] ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'done', '1', 'result', ARGV[1])
redis.call('HDEL', KEYS[1], 'tok')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// Abort drops only the caller's own claim in progress, so a late Abort can
// neither erase a result nor free a key another attempt has taken over.
var abortScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'done', 'tok')
if r[1] == '0' and r[2] == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

// Begin implements Store.
func (r *Redis) Begin(ctx context.Context, key, fingerprint string) (Claim, error) {
	token := newToken()
	reply, err := beginScript.Run(ctx, r.client, []string{r.key(key)}, fingerprint, millis(r.limits.ClaimLease), token).Slice()
	if err != nil {
		return Claim{}, redisconn.Wrap(fmt.Sprintf("idempotency: begin %q", key), err)
	}
	code, _ := reply[0].(int64)
	switch code {
	case 0:
		return Claim{Token: token}, nil
	case 1:
		return Claim{}, fmt.Errorf("begin %q: %w", key, ErrMismatch)
	case 2:
		left := time.Duration(0)
		if len(reply) > 1 {
			ms, _ := reply[1].(int64)
			left = time.Duration(max(ms, 0)) * time.Millisecond
		}
		return Claim{}, &InProgressError{Key: key, RetryAfter: left}
	}
	if len(reply) < 2 {
		return Claim{}, fmt.Errorf("idempotency: begin %q: unexpected reply %v", key, reply)
	}
	result, _ := reply[1].(string)
	return Claim{Done: true, Result: []byte(result)}, nil
}

// Finish implements Store.
func (r *Redis) Finish(ctx context.Context, key, token string, result []byte) error {
	ok, err := finishScript.Run(ctx, r.client, []string{r.key(key)}, result, millis(r.limits.TTL), token).Int()
	if err != nil {
		return redisconn.Wrap(fmt.Sprintf("idempotency: finish %q", key), err)
	}
	if ok == 0 {
		return fmt.Errorf("finish %q: %w", key, errNotClaimed)
	}
	return nil
}

// Abort implements Store.
func (r *Redis) Abort(ctx context.Context, key, token string) error {
	err := abortScript.Run(ctx, r.client, []string{r.key(key)}, token).Err()
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
