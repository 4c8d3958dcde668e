package schedule

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"notification-service/internal/redisconn"
	"notification-service/store"
)

// Claim, fire, ack: the worker claims due items with a lease, fires them in
// due order, and hands what fired to the acker; what failed, or was not
// fired when Run ends, is put back.

// claimed is an item this Run holds: claimed with token until leaseEnd.
type claimed struct {
	item     Item
	due      int64
	token    string
	leaseEnd time.Time
}

// work claims and fires, one claim at a time, so the items of one instance
// fire in due order.
func (rn *runner) work(ctx context.Context) {
	bo := newBackoff()
	for {
		var ids []string
		all := false
		retry := rn.catchUp
		select {
		case <-ctx.Done():
			return
		case <-rn.resync:
			err := rn.r.ensureExpiryEvents(ctx)
			switch {
			case err == nil:
			case errors.Is(err, store.ErrUnavailable):
				// Not refused, just not reachable: try again below.
				retry = rn.resync
			case ctx.Err() == nil:
				rn.r.logger.LogAttrs(ctx, slog.LevelError, "schedule: cannot make sure Redis publishes expired-key events; items fire up to "+
					rn.r.overdueGrace.String()+" late until it does: "+expiryEventsHelp,
					slog.Any("error", err))
			}
			all = true
		case <-rn.catchUp:
			all = true
		case id := <-rn.claims:
			ids = append(ids, id)
		drain:
			for len(ids) < claimLimit {
				select {
				case id := <-rn.claims:
					ids = append(ids, id)
				default:
					break drain
				}
			}
		}
		err := rn.claimAndFire(ctx, ids, all)
		if err == nil && retry == rn.catchUp {
			bo.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		wait := bo.Next()
		if err != nil {
			rn.r.logger.LogAttrs(ctx, slog.LevelWarn, "schedule: claim failed, will catch up",
				slog.Duration("retry_in", wait), slog.Any("error", err))
		}
		// Whatever those events were for is still due: claim it all,
		// after the backoff or as soon as a resubscription says Redis is
		// back.
		select {
		case <-ctx.Done():
			return
		case <-rn.resync:
			signal(rn.resync)
		case <-time.After(wait):
			signal(retry)
		}
	}
}

// claimAndFire claims what ids point at (everything due when all is set),
// slice by slice, and fires it.
func (rn *runner) claimAndFire(ctx context.Context, ids []string, all bool) error {
	for ctx.Err() == nil {
		batch, err := rn.claim(ctx, ids, all)
		if err != nil {
			return err
		}
		rn.fireAll(ctx, batch)
		if len(batch) < claimLimit {
			return nil
		}
	}
	return nil
}

// claim runs the claim script: with all, every item due; otherwise every
// item due no later than the latest of ids still pending (an expired trigger
// proves its item, and anything due before it, is due).
func (rn *runner) claim(ctx context.Context, ids []string, all bool) ([]claimed, error) {
	r := rn.r
	token := rn.runID + "." + strconv.FormatUint(rn.seq.Add(1), 10)
	args := make([]any, 0, 4+len(ids))
	args = append(args, string(r.prefix), token, r.lease.Milliseconds(), claimLimit)
	if !all {
		if len(ids) == 0 {
			return nil, nil
		}
		for _, id := range ids {
			args = append(args, id)
		}
	}
	leaseEnd := time.Now().Add(r.lease)
	// A claim cut off by shutdown could take items without telling us,
	// leaving them to wait out the lease: let it finish, and fireAll puts
	// back what it got.
	claimCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	vals, err := claimScript.Run(claimCtx, r.client, nil, args...).StringSlice()
	if err != nil {
		return nil, rn.r.hooks.Wrap("schedule: claim", err)
	}
	batch := make([]claimed, 0, len(vals)/3)
	for i := 0; i+2 < len(vals); i += 3 {
		id, raw := vals[i], vals[i+1]
		due, _ := strconv.ParseInt(vals[i+2], 10, 64)
		c := claimed{due: due, token: token, leaseEnd: leaseEnd}
		c.item, err = decodeItem(raw)
		if err != nil {
			// It can never be fired: drop it rather than reclaim it
			// every lease.
			r.logger.LogAttrs(ctx, slog.LevelError, "schedule: undecodable item dropped",
				slog.String("id", id), slog.Any("error", err))
			c.item.ID = id
			rn.acks <- []claimed{c}
			continue
		}
		batch = append(batch, c)
	}
	return batch, nil
}

// fireAll fires a claimed slice in order, then hands what fired to the
// acker. When ctx ends, the items not fired yet are put back, due as
// before.
func (rn *runner) fireAll(ctx context.Context, batch []claimed) {
	r := rn.r
	fired := make([]claimed, 0, len(batch))
	defer func() {
		if len(fired) > 0 {
			rn.acks <- fired
		}
	}()
	for i, c := range batch {
		if ctx.Err() != nil {
			for _, c := range batch[i:] {
				rn.settle(ctx, []claimed{c}, "put back", func(ctx context.Context, cs []claimed) error {
					return rn.release(ctx, cs[0], c.due)
				})
			}
			return
		}
		fireCtx, cancel := context.WithTimeout(ctx, r.lease/2)
		err := rn.fire(fireCtx, c.item)
		cancel()
		if err == nil {
			fired = append(fired, c)
			continue
		}
		at := time.Now().Add(retryDelay)
		if ctx.Err() != nil {
			at = time.UnixMilli(c.due) // shutting down: due as before
		}
		r.logger.LogAttrs(ctx, slog.LevelError, "schedule: fire failed, will retry",
			slog.String("id", c.item.ID),
			slog.Time("scheduled_at", c.item.ScheduledAt),
			slog.Time("retry_at", at),
			slog.Any("error", err),
		)
		rn.settle(ctx, []claimed{c}, "put back", func(ctx context.Context, cs []claimed) error {
			return rn.release(ctx, cs[0], dueMillis(at))
		})
	}
}

// ackFired acks fired items, as many as are waiting in one call, until the
// worker closes acks.
func (rn *runner) ackFired(ctx context.Context) {
	for cs := range rn.acks {
		batch := cs
	more:
		for len(batch) < ackLimit {
			select {
			case cs, ok := <-rn.acks:
				if !ok {
					break more
				}
				batch = append(batch, cs...)
			default:
				break more
			}
		}
		rn.settle(ctx, batch, "ack", rn.ack)
	}
}

// settle runs op (an ack or a put-back of items from one claim) until it
// succeeds, the lease runs out (the items are then put back by whoever sees
// the lease expire) or Run ends. It works on a context of its own, so a
// shutdown still settles.
func (rn *runner) settle(ctx context.Context, cs []claimed, what string, op func(context.Context, []claimed) error) {
	bo := newBackoff()
	leaseEnd := cs[0].leaseEnd
	for _, c := range cs[1:] {
		if c.leaseEnd.Before(leaseEnd) {
			leaseEnd = c.leaseEnd
		}
	}
	for {
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
		err := op(opCtx, cs)
		cancel()
		if err == nil {
			return
		}
		wait := bo.Next()
		if ctx.Err() != nil || time.Now().Add(wait).After(leaseEnd) {
			rn.r.logger.LogAttrs(ctx, slog.LevelError, "schedule: "+what+" failed; the items go back to pending when their lease expires",
				slog.Any("ids", idsOf(cs)), slog.Time("lease_end", leaseEnd), slog.Any("error", err))
			return
		}
		rn.r.logger.LogAttrs(ctx, slog.LevelWarn, "schedule: "+what+" failed, will retry",
			slog.Any("ids", idsOf(cs)), slog.Duration("retry_in", wait), slog.Any("error", err))
		if !redisconn.Sleep(ctx, wait) {
			return
		}
	}
}

func idsOf(cs []claimed) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.item.ID
	}
	return ids
}

// ack deletes fired items, those their claims still hold.
func (rn *runner) ack(ctx context.Context, cs []claimed) error {
	args := make([]any, 0, 1+2*len(cs))
	args = append(args, string(rn.r.prefix))
	for _, c := range cs {
		args = append(args, c.item.ID, c.token)
	}
	lost, err := ackScript.Run(ctx, rn.r.client, nil, args...).StringSlice()
	if err != nil {
		return rn.r.hooks.Wrap("schedule: ack", err)
	}
	for _, id := range lost {
		rn.r.logger.LogAttrs(ctx, slog.LevelWarn, "schedule: fired after its lease expired; another instance may fire it again",
			slog.String("id", id))
	}
	return nil
}

// release puts a claimed item back, pending and due at at (ms).
func (rn *runner) release(ctx context.Context, c claimed, at int64) error {
	_, err := releaseScript.Run(ctx, rn.r.client, nil, string(rn.r.prefix), c.item.ID, c.token, at).Int()
	return rn.r.hooks.Wrap("schedule: put back "+c.item.ID, err)
}
