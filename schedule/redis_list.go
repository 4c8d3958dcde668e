package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
)

// Listing: pages of pending items read from a sorted index in one script,
// and the upkeep of the index of all items (sched:at), which versions
// before it did not keep.

// List returns one page of pending items and their count, read in one
// script: the count and the page agree. With q.UserID set it reads only
// that user's index. A page costs O(log² n + limit) in Redis wherever it
// starts, and a user's count O(min(the user's items, the items in flight)).
func (r *Redis) List(ctx context.Context, q Query) (Page, error) {
	if q.Limit < 1 {
		return Page{}, fmt.Errorf("schedule: list: limit %d is not positive", q.Limit)
	}
	after := ""
	if !q.After.IsZero() {
		after = strconv.FormatInt(q.After.At, 10)
	}
	vals, err := listScript.Run(ctx, r.client, nil, string(r.prefix), q.UserID, q.Limit, after, q.After.ID).StringSlice()
	if err != nil {
		return Page{}, r.hooks.Wrap("schedule: list", err)
	}
	if len(vals) == 0 {
		return Page{}, fmt.Errorf("schedule: list: empty reply")
	}
	var page Page
	if page.Total, err = strconv.Atoi(vals[0]); err != nil {
		return Page{}, fmt.Errorf("schedule: list: total %q: %w", vals[0], err)
	}
	raws := vals[1:]
	more := len(raws) > q.Limit
	if more {
		raws = raws[:q.Limit]
	}
	page.Items = make([]Item, 0, len(raws))
	for _, raw := range raws {
		it, err := decodeItem(raw)
		if err != nil {
			return Page{}, fmt.Errorf("schedule: list: decode: %w", err)
		}
		page.Items = append(page.Items, it)
	}
	if more {
		// The item's own ScheduledAt gives the score the index holds
		// for it (add.lua scores it by ScheduledAt in ms).
		page.Next = cursorOf(page.Items[len(page.Items)-1])
	}
	return page, nil
}

// reindexBatch is how many items one step of reindex reads and indexes.
const reindexBatch = 500

// reindex puts into sched:at the items stored by a version that did not
// keep it, so an unfiltered listing shows them. It has nothing to do (two
// counts) unless some item is missing; an item added or forgotten while it
// runs is left to the scripts, which keep the index themselves.
func (r *Redis) reindex(ctx context.Context) error {
	const op = "schedule: index items for listing"
	itemsKey, atKey := r.prefix.Key("sched", "items"), r.prefix.Key("sched", "at")
	stored, err := r.client.HLen(ctx, itemsKey).Result()
	if err != nil {
		return r.hooks.Wrap(op, err)
	}
	indexed, err := r.client.ZCard(ctx, atKey).Result()
	if err != nil {
		return r.hooks.Wrap(op, err)
	}
	if indexed >= stored {
		return nil
	}
	added := 0
	var cursor uint64
	for {
		kvs, next, err := r.client.HScan(ctx, itemsKey, cursor, "", reindexBatch).Result()
		if err != nil {
			return r.hooks.Wrap(op, err)
		}
		args := []any{string(r.prefix)}
		for i := 0; i+1 < len(kvs); i += 2 {
			it, err := decodeItem(kvs[i+1])
			if err != nil {
				continue // never fires either: the claim drops it
			}
			args = append(args, kvs[i], it.ScheduledAt.UnixMilli())
		}
		if len(args) > 1 {
			n, err := indexScript.Run(ctx, r.client, nil, args...).Int()
			if err != nil {
				return r.hooks.Wrap(op, err)
			}
			added += n
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	r.logger.LogAttrs(ctx, slog.LevelInfo, "schedule: indexed items stored by an older version for listing",
		slog.Int("items", added))
	return nil
}
