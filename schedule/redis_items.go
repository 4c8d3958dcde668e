package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"notification-service/broker"
)

// Items: adding, reading and cancelling pending items, each one script, as
// Redis keeps them. Listing is in redis_list.go.

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
// woken by the script, touches it then (lua/prelude.lua, arm). The script
// checks the bounds and stores the item in one step, so instances adding
// at once cannot pass a bound together.
func (r *Redis) Add(ctx context.Context, it Item) error {
	body, err := json.Marshal(storedItem(it))
	if err != nil {
		return fmt.Errorf("schedule: add %s: %w", it.ID, err)
	}
	args := []any{string(r.prefix), it.ID, body, dueMillis(it.ScheduledAt), it.ScheduledAt.UnixMilli(),
		max(r.limits.PerUser, 0), max(r.limits.Total, 0)}
	for _, u := range it.UserIDs() {
		args = append(args, u)
	}
	res, err := addScript.Run(ctx, r.client, nil, args...).StringSlice()
	if err != nil {
		return r.hooks.Wrap("schedule: add "+it.ID, err)
	}
	switch {
	case len(res) == 1 && res[0] == "ok":
		return nil
	case len(res) == 1 && res[0] == "duplicate":
		err = ErrDuplicate
	case len(res) == 1 && res[0] == "total":
		err = &LimitError{Limit: r.limits.Total}
	case len(res) == 2 && res[0] == "user":
		err = &LimitError{UserID: res[1], Limit: r.limits.PerUser}
	default:
		err = fmt.Errorf("unexpected reply %q", res)
	}
	return fmt.Errorf("schedule: add %s: %w", it.ID, err)
}

// Get returns a pending item.
func (r *Redis) Get(ctx context.Context, id string) (Item, error) {
	return r.oneItem(ctx, getScript, "get", id)
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
