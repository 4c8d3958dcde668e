package analytics

import (
	"context"
	"embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

//go:embed lua/*.lua
var luaFiles embed.FS

var applyScript = redis.NewScript(redisconn.LuaFile(luaFiles, "apply"))

// scriptItems bounds the marks and read buckets of one script run: a
// flush after a burst becomes several short scripts rather than one that
// holds Redis for long.
const scriptItems = 1000

// Redis is a Store shared by every instance on one Redis: a hash per day
// (one field per type and figure), expiring with Limits.Retention; a set of
// the day's types; and, to count each sequence number once, a bitmap per
// million sequence numbers and kind (128 KiB when full), expiring a day
// after its last report. lua/apply.lua says how the keys are laid out.
type Redis struct {
	client *redis.Client
	keys   redisconn.Prefix
	limits Limits
	hooks  redisconn.Hooks
	now    func() time.Time
}

var _ Store = (*Redis)(nil)

// RedisOptions configure a Redis store.
type RedisOptions struct {
	Prefix redisconn.Prefix
	Limits Limits
	// OnError is called for each command that failed.
	OnError func()
}

// NewRedis returns a Redis store on client.
func NewRedis(client *redis.Client, opts RedisOptions) *Redis {
	return &Redis{
		client: client, keys: opts.Prefix, limits: opts.Limits.orDefault(),
		hooks: redisconn.Hooks{OnError: opts.OnError}, now: time.Now,
	}
}

// expireAt is when a day's keys go: Limits.Retention after the day ends.
func (r *Redis) expireAt(d Day) int64 { return (d + 1).Start().Add(r.limits.Retention).Unix() }

// Apply implements Store, in scripts of at most scriptItems marks and
// read buckets, one after the other.
func (r *Redis) Apply(ctx context.Context, b Batch) error {
	now := r.now()
	head := func() []any {
		return []any{string(r.keys), r.limits.MaxTypes, OtherType, int64(dedupWindow / time.Second), 0}
	}
	var chunks [][]any
	args, items, marks := head(), 0, 0
	cut := func() {
		if items == 0 {
			return
		}
		args[4] = marks
		chunks = append(chunks, args)
		args, items, marks = head(), 0, 0
	}
	for _, set := range []struct {
		kind  string
		marks []Mark
	}{{"s", b.Sent}, {"d", b.Delivered}} {
		for _, m := range set.marks {
			if !r.limits.kept(m.Day, now) {
				continue
			}
			args = append(args, set.kind, m.Seq>>dedupBlockShift, m.Seq&(dedupBlockBits-1), m.Day.String(), r.expireAt(m.Day), m.Type)
			items++
			marks++
			if items == scriptItems {
				cut()
			}
		}
	}
	// Reads follow the marks in the same chunk (ARGV[5] says where the
	// marks end): a chunk is cut only between whole entries, and marks
	// come first in every chunk, so a usual flush is one script.
	for k, h := range b.Reads {
		if !r.limits.kept(k.Day, now) {
			continue
		}
		for bucket, n := range h {
			args = append(args, k.Day.String(), r.expireAt(k.Day), k.Type, bucket, n)
			items++
			if items == scriptItems {
				cut()
			}
		}
	}
	cut()
	for i, args := range chunks {
		if err := applyScript.Run(ctx, r.client, nil, args...).Err(); err != nil {
			return r.hooks.Wrap(fmt.Sprintf("analytics: apply (part %d of %d)", i+1, len(chunks)), err)
		}
	}
	return nil
}

// Query implements Store: one HGETALL per kept day, pipelined.
func (r *Redis) Query(ctx context.Context, from, to Day, typ string) ([]Row, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	now := r.now()
	pipe := r.client.Pipeline()
	days := make(map[Day]*redis.MapStringStringCmd)
	for d := from; d <= to; d++ {
		if r.limits.kept(d, now) {
			days[d] = pipe.HGetAll(ctx, r.keys.Key("analytics", "day", d.String()))
		}
	}
	if len(days) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, r.hooks.Wrap("analytics: query", err)
	}
	var rows []Row
	for d, cmd := range days {
		byType := make(map[string]*Counts)
		for field, value := range cmd.Val() {
			code, t, ok := strings.Cut(field, ":")
			n, err := strconv.ParseInt(value, 10, 64)
			if !ok || err != nil || (typ != "" && t != typ) {
				continue
			}
			c := byType[t]
			if c == nil {
				c = &Counts{ReadTimes: Histogram{}}
				byType[t] = c
			}
			switch {
			case code == "s":
				c.Sent = n
			case code == "d":
				c.Delivered = n
			case code == "r":
				c.Read = n
			case strings.HasPrefix(code, "h"):
				if b, err := strconv.Atoi(code[1:]); err == nil {
					c.ReadTimes[b] = n
				}
			}
		}
		for t, c := range byType {
			rows = append(rows, Row{Key: Key{d, t}, Counts: *c})
		}
	}
	sortRows(rows)
	return rows, nil
}
