package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/broker"
)

// Items: adding, reading, listing and cancelling pending items, each one
// script, as Redis keeps them.

// storedItem is an Item as the scripts keep it.
type storedItem struct {
	ID            string                `json:"id"`
	ScheduledAt   time.Time             `json:"scheduled_at"`
	CreatedAt     time.Time             `json:"created_at"`
	Notifications []broker.Notification `json:"notifications"`
}

func decodeItem(raw string) (Item, error) {
	var s storedItem
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Item{}, err
	}
	return Item(s), nil
}

// dueMillis is when the item is due on the scripts' millisecond clock,
// rounded up so that "strictly past it" is never before ScheduledAt.
func dueMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return max(ms, 1) // PEXPIREAT needs a positive time
}

// Add stores it, due at its ScheduledAt. An item already due fires at
// once: its trigger expires a millisecond later, and every instance's timer,
// woken by the script, touches it then (lua/prelude.lua, arm).
func (r *Redis) Add(ctx context.Context, it Item) error {
	body, err := json.Marshal(storedItem(it))
	if err != nil {
		return fmt.Errorf("schedule: add %s: %w", it.ID, err)
	}
	args := []any{string(r.prefix), it.ID, body, dueMillis(it.ScheduledAt), it.ScheduledAt.UnixMilli()}
	for _, u := range it.UserIDs() {
		args = append(args, u)
	}
	added, err := addScript.Run(ctx, r.client, nil, args...).Int()
	if err != nil {
		return r.hooks.Wrap("schedule: add "+it.ID, err)
	}
	if added == 0 {
		return fmt.Errorf("schedule: add %s: %w", it.ID, ErrDuplicate)
	}
	return nil
}

// Get returns a pending item.
func (r *Redis) Get(ctx context.Context, id string) (Item, error) {
	return r.oneItem(ctx, getScript, "get", id)
}

// List returns the pending items, earliest ScheduledAt first. With userID
// set it reads only that user's index.
func (r *Redis) List(ctx context.Context, userID string) ([]Item, error) {
	raws, err := listScript.Run(ctx, r.client, nil, string(r.prefix), userID).StringSlice()
	if err != nil {
		return nil, r.hooks.Wrap("schedule: list", err)
	}
	items := make([]Item, 0, len(raws))
	for _, raw := range raws {
		it, err := decodeItem(raw)
		if err != nil {
			return nil, fmt.Errorf("schedule: list: decode: %w", err)
		}
		items = append(items, it)
	}
	slices.SortFunc(items, compareItems)
	return items, nil
}

// Cancel removes a pending item and returns it.
func (r *Redis) Cancel(ctx context.Context, id string) (Item, error) {
	return r.oneItem(ctx, cancelScript, "cancel", id)
}

// oneItem runs a script that answers {item JSON} for a pending item, or {}
// (ErrNotFound), and decodes the item.
func (r *Redis) oneItem(ctx context.Context, script *redis.Script, op, id string) (Item, error) {
	found, err := script.Run(ctx, r.client, nil, string(r.prefix), id).StringSlice()
	if err != nil {
		return Item{}, r.hooks.Wrap("schedule: "+op+" "+id, err)
	}
	if len(found) == 0 {
		return Item{}, fmt.Errorf("schedule: %s %s: %w", op, id, ErrNotFound)
	}
	it, err := decodeItem(found[0])
	if err != nil {
		return Item{}, fmt.Errorf("schedule: %s %s: decode: %w", op, id, err)
	}
	return it, nil
}
