package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
)

// The feed reader: every instance reads the feed (a Redis stream) with a
// blocking XREAD on a connection of its own, hands each entry to its hub in
// feed order, and after an outage decides whether reading on is still exact
// (resync) or its connections must resume from their cursors.

// readFeed is the reader loop: XREAD BLOCK from the last id, hand off,
// repeat; on error, back off and resync.
func (b *Redis) readFeed(ctx context.Context) {
	feed := b.keys.Key("bus", "feed")
	// Capped low: while Redis is away a retry costs one dial, and the
	// sooner the reader finds it back the sooner live delivery resumes
	// (sends are accepted again at once).
	backoff := redisconn.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	synced := false
	// The reader blocks on a connection of its own; go-redis does not
	// abort a blocked read when its context ends, so shutdown unblocks it
	// from another connection (CLIENT UNBLOCK) and Run returns at once.
	readerClient := b.readerClient
	defer readerClient.Close()
	var reader *redis.Conn
	defer func() {
		if reader != nil {
			reader.Close()
		}
	}()
	var readerID atomic.Int64
	// Unblocking once is not enough: the context may end after the loop
	// looked at it but before the XREAD reached Redis, which then blocks
	// for its whole timeout. Until the loop has returned, unblock again
	// every moment.
	returned := make(chan struct{})
	defer close(returned)
	stop := context.AfterFunc(ctx, func() {
		for {
			if id := readerID.Load(); id != 0 {
				unblockCtx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = b.client.ClientUnblock(unblockCtx, id).Err()
				cancel()
			}
			select {
			case <-returned:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	defer stop()
	for ctx.Err() == nil {
		if reader == nil {
			reader = readerClient.Conn()
			id, err := reader.ClientID(ctx).Result()
			if err != nil {
				reader.Close()
				reader = nil
				if ctx.Err() == nil {
					b.setReadErr(b.hooks.Wrap("broker: open feed reader", err))
					backoff.Wait(ctx)
				}
				continue
			}
			readerID.Store(id)
			if ctx.Err() != nil {
				return // ended before the ID was known: nothing to unblock
			}
		}
		if !synced {
			if err := b.resync(ctx); err != nil {
				if ctx.Err() == nil {
					b.setReadErr(err)
					backoff.Wait(ctx)
				}
				continue
			}
			synced = true
		}
		select {
		case <-b.epochChanged:
			synced = false
			continue
		default:
		}
		b.mu.Lock()
		from, epoch := b.feedID, b.epoch
		b.mu.Unlock()
		streams, err := reader.XRead(ctx, &redis.XReadArgs{
			Streams: []string{feed, from},
			Count:   1000,
			Block:   2 * time.Second,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil) && ctx.Err() != nil:
			return // unblocked for shutdown
		case errors.Is(err, redis.Nil):
			// Idle: a good moment to check that Redis still holds the
			// data the feed position refers to (go-redis retries a
			// command on a new connection by itself, so a Redis that
			// restarted empty may never have shown the reader an error).
			current, err := b.client.Get(ctx, b.keys.Key("bus", "epoch")).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				b.setReadErr(b.hooks.Wrap("broker: read epoch", err))
				synced = false
				continue
			}
			if current != epoch {
				synced = false
			}
			b.setReadErr(nil)
			continue
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			b.setReadErr(b.hooks.Wrap("broker: read feed", err))
			reader.Close()
			reader = nil
			synced = false
			backoff.Wait(ctx)
			continue
		}
		b.setReadErr(nil)
		backoff.Reset()
		for _, s := range streams {
			if b.deliver(s.Messages) {
				synced = false // resync ends local connections: they resume
			}
		}
	}
}

// deliver hands one batch of feed entries to the hub, in feed order.
// It reports a gap, and stops before it, when the next notification is not
// the one after head: every sequence number has its own feed entry, so
// entries were trimmed before this instance read them (it stalled, or fell
// behind by more than feedMaxLen), and the reader must resync.
func (b *Redis) deliver(msgs []redis.XMessage) (gap bool) {
	type done struct {
		n       Notification
		frame   []byte // read for the callback's type and time, after the lock
		reached int
	}
	var audit []done
	advanced := false
	malformed := 0
	b.mu.Lock()
	for _, m := range msgs {
		frame, _ := m.Values["f"].(string)
		user, _ := m.Values["u"].(string)
		kind := m.Values["k"]
		if kind == "n" {
			if seq := feedSeq(m.ID); seq > b.head+1 {
				gap = true
				break
			}
		}
		b.feedID = m.ID
		switch kind {
		case "n":
			seq := feedSeq(m.ID)
			if seq <= b.head {
				continue // covered by a resync's head
			}
			b.head, b.headID = seq, str(m.Values["i"])
			advanced = true
			n := Notification{ID: str(m.Values["i"]), UserID: user, Exclude: str(m.Values["x"]), Seq: seq}
			chans, ok := feedChannels(str(m.Values["c"]))
			if !ok {
				malformed++
			}
			n.Channels = chans
			body := []byte(frame) // one copy, shared by every connection and the callback
			f := &Frame{Cursor: str(m.Values["r"]), Seq: seq, JSON: body}
			if us, err := strconv.ParseInt(str(m.Values["t"]), 10, 64); err == nil {
				f.Published = time.UnixMicro(us)
			}
			audit = append(audit, done{n, body, b.hub.Deliver(n, f)})
		case "u":
			var head struct {
				Event string `json:"event"`
			}
			_ = json.Unmarshal([]byte(frame), &head)
			b.hub.DeliverToUser(user, &Frame{Event: head.Event, JSON: []byte(frame)})
		case "c":
			b.hub.DeliverToChannel(str(m.Values["ch"]),
				&Frame{Event: str(m.Values["e"]), Only: str(m.Values["o"]), JSON: []byte(frame)}, str(m.Values["x"]))
		}
	}
	if advanced {
		b.moved()
	}
	b.mu.Unlock()
	if malformed > 0 {
		b.logger.Warn("redis: feed entries with a malformed channel list were delivered to their user only",
			slog.Int("entries", malformed))
	}
	for _, d := range audit {
		// The hub routes without the type and time; only the callback
		// reads them, so they are parsed here, off the delivery lock.
		d.n.Type, d.n.Timestamp = frameTypeAndTime(d.frame)
		b.delivered(d.n, d.reached)
	}
	return gap
}

func (b *Redis) setReadErr(err error) {
	b.healthMu.Lock()
	defer b.healthMu.Unlock()
	if err != nil && b.readErr == nil {
		b.logger.Error("redis: feed unavailable; live delivery paused, sends answer 503", slog.Any("error", err))
	}
	if err == nil && b.readErr != nil {
		b.logger.Info("redis: feed available again")
		b.hooks.Reconnected()
	}
	b.readErr = err
}

// resync reads where the feed stands. On the first call it sets the start;
// later (after an outage) it decides whether reading on from feedID is
// still exact: if Redis lost its data (a new epoch) or trimmed entries this
// instance never read, local connections are ended so their clients resume
// through Replay.
func (b *Redis) resync(ctx context.Context) error {
	keys := []string{b.keys.Key("bus", "epoch"), b.keys.Key("bus", "seq"), b.keys.Key("bus", "feed")}
	res, err := feedPositionScript.Run(ctx, b.client, keys, newEpoch()).StringSlice()
	if err != nil {
		return b.hooks.Wrap("broker: read feed position", err)
	}
	epoch, lastID := res[0], res[2]
	seq, err := strconv.ParseUint(res[1], 10, 64)
	if err != nil {
		return fmt.Errorf("broker: bus:seq %q: %w", res[1], err)
	}

	first := false
	b.readyOnce.Do(func() { first = true })
	b.mu.Lock()
	if first {
		b.epoch, b.head, b.feedID = epoch, seq, lastID
		b.mu.Unlock()
		close(b.ready)
		return nil
	}
	lost := epoch != b.epoch
	if !lost {
		rolledBack, gap, err := b.checkFeed(ctx, seq)
		if err != nil {
			b.mu.Unlock()
			return err
		}
		if rolledBack {
			// Redis came back with older data under the same epoch (a
			// snapshot, an fsync'd-every-second file, a lagging replica):
			// the sequence numbers after its data will be handed out again,
			// so every cursor from before must expire. A new epoch does it;
			// set only if no other instance has set one already.
			b.logger.Warn("redis: data rolled back to an earlier state; starting a new epoch so old cursors reset",
				slog.Uint64("redis_seq", seq), slog.Uint64("delivered", b.head))
			if epoch, err = b.renewEpoch(ctx, epoch); err != nil {
				b.mu.Unlock()
				return err
			}
		}
		lost = rolledBack || gap
	}
	if lost {
		b.logger.Warn("redis: the feed no longer holds what this instance missed; ending local connections so they resume from their cursors",
			slog.String("epoch", epoch), slog.Uint64("head", seq), slog.Uint64("delivered", b.head))
		b.epoch, b.head, b.headID, b.feedID = epoch, seq, "", lastID
		b.moved()
	}
	b.mu.Unlock()
	if lost {
		b.hub.Each(func(c Conn) {
			if r, ok := c.(Resyncer); ok {
				r.Resync()
			}
		})
	}
	return nil
}

// checkFeed tells, after an outage, whether reading on from head is still
// exact. rolledBack: Redis holds older data than this instance delivered
// (its sequence is behind head, or the feed entry at head is another
// notification). gap: entries after head were trimmed before being read.
// The caller holds b.mu.
func (b *Redis) checkFeed(ctx context.Context, seq uint64) (rolledBack, gap bool, err error) {
	if seq < b.head {
		return true, false, nil
	}
	feed := b.keys.Key("bus", "feed")
	oldest, err := b.client.XRangeN(ctx, feed, "-", "+", 1).Result()
	if err != nil {
		return false, false, b.hooks.Wrap("broker: read feed start", err)
	}
	if b.head > 0 && b.headID != "" && len(oldest) > 0 && feedSeq(oldest[0].ID) <= b.head {
		id := strconv.FormatUint(b.head, 10) + "-0"
		at, err := b.client.XRange(ctx, feed, id, id).Result()
		if err != nil {
			return false, false, b.hooks.Wrap("broker: read feed at head", err)
		}
		if len(at) == 0 || str(at[0].Values["i"]) != b.headID {
			return true, false, nil
		}
	}
	gap = seq > b.head && (len(oldest) == 0 || feedSeq(oldest[0].ID) > b.head+1)
	return false, gap, nil
}

// renewEpoch replaces the epoch seen with a new one, unless another
// instance already has: lua/renew_epoch.lua.
func (b *Redis) renewEpoch(ctx context.Context, seen string) (string, error) {
	epoch, err := renewEpochScript.Run(ctx, b.client, []string{b.keys.Key("bus", "epoch")}, seen, newEpoch()).Text()
	if err != nil {
		return "", b.hooks.Wrap("broker: renew epoch", err)
	}
	return epoch, nil
}

// Resyncer is a connection that can end itself so that its client resumes
// from its cursor. The Redis bus asks it of every local connection when its
// live feed has a gap it cannot fill.
type Resyncer interface {
	Resync()
}

// moved wakes Head's waiters. The caller holds b.mu.
func (b *Redis) moved() {
	close(b.advanced)
	b.advanced = make(chan struct{})
}

func feedSeq(id string) uint64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(ms, 10, 64)
	return n
}

func str(v any) string { s, _ := v.(string); return s }

// feedChannels reads the channel list of a feed entry, as lua/publish.lua
// writes it: each channel as "<byte length>:<name>", one after the other,
// so a name may hold any byte (',' and ';' included). ok is false for a
// list that does not parse (written by something else); the channels read
// up to the fault are returned.
func feedChannels(s string) (channels []string, ok bool) {
	for s != "" {
		size, rest, found := strings.Cut(s, ":")
		n, err := strconv.Atoi(size)
		if !found || err != nil || n < 0 || n > len(rest) {
			return channels, false
		}
		channels = append(channels, rest[:n])
		s = rest[n:]
	}
	return channels, true
}

// frameTypeAndTime reads the type and timestamp of a notification frame
// for the delivery callback, in a few hundred nanoseconds rather than the
// microseconds of decoding it: a notification's JSON has "type" right
// after the id (which holds no quote) and "timestamp" last, and neither
// key can appear earlier, respectively later, unescaped. A type with an
// escape, or a frame of another shape, is decoded in full.
func frameTypeAndTime(frame []byte) (string, time.Time) {
	const typeKey, timeKey = `"type":"`, `"timestamp":"`
	var typ string
	var ts time.Time
	ok := false
	if i := bytes.Index(frame, []byte(typeKey)); i >= 0 {
		rest := frame[i+len(typeKey):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 && bytes.IndexByte(rest[:j], '\\') < 0 {
			typ = string(rest[:j])
			if i := bytes.LastIndex(frame, []byte(timeKey)); i >= 0 {
				rest := frame[i+len(timeKey):]
				if j := bytes.IndexByte(rest, '"'); j >= 0 {
					var err error
					ts, err = time.Parse(time.RFC3339Nano, string(rest[:j]))
					ok = err == nil
				}
			}
		}
	}
	if !ok {
		var v struct {
			Type      string    `json:"type"`
			Timestamp time.Time `json:"timestamp"`
		}
		_ = json.Unmarshal(frame, &v)
		return v.Type, v.Timestamp
	}
	return typ, ts
}
