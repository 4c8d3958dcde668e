package instances

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

//go:embed lua/*.lua
var luaFiles embed.FS

var (
	beatScript  = redis.NewScript(redisconn.LuaFile(luaFiles, "beat"))
	leaveScript = redis.NewScript(redisconn.LuaFile(luaFiles, "leave"))
	listScript  = redis.NewScript(redisconn.LuaFile(luaFiles, "list"))
)

// Redis is the Registry of every instance on one Redis: each report is a
// key expiring Lapse after its beat (Redis's clock, so instances' clocks
// need not agree), and a set names the instances to look for. A dead
// instance leaves the list when its key expires: within Lapse of its last
// beat. Listing costs one script over the instances (a handful).
type Redis struct {
	client *redis.Client
	keys   redisconn.Prefix
	lapse  time.Duration
	hooks  redisconn.Hooks
}

var _ Registry = (*Redis)(nil)

// RedisOptions configure a Redis registry.
type RedisOptions struct {
	Prefix redisconn.Prefix
	// Lapse is how long an instance stays listed after its last beat.
	Lapse   time.Duration
	OnError func()
}

// NewRedis returns a registry on client.
func NewRedis(client *redis.Client, opts RedisOptions) *Redis {
	return &Redis{client: client, keys: opts.Prefix, lapse: opts.Lapse, hooks: redisconn.Hooks{OnError: opts.OnError}}
}

// Beat implements Registry.
func (r *Redis) Beat(ctx context.Context, rep Report) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("instances: encode report: %w", err)
	}
	err = beatScript.Run(ctx, r.client, nil, string(r.keys), rep.ID, body, r.lapse.Milliseconds()).Err()
	return r.hooks.Wrap("instances: beat", err)
}

// Leave implements Registry.
func (r *Redis) Leave(ctx context.Context, id string) error {
	return r.hooks.Wrap("instances: leave", leaveScript.Run(ctx, r.client, nil, string(r.keys), id).Err())
}

// List implements Registry.
func (r *Redis) List(ctx context.Context) ([]Report, error) {
	bodies, err := listScript.Run(ctx, r.client, nil, string(r.keys)).StringSlice()
	if err != nil {
		return nil, r.hooks.Wrap("instances: list", err)
	}
	out := make([]Report, 0, len(bodies))
	for _, b := range bodies {
		var rep Report
		if err := json.Unmarshal([]byte(b), &rep); err != nil {
			continue // another version's report: leave it out, not the list
		}
		out = append(out, rep)
	}
	sortReports(out)
	return out, nil
}
