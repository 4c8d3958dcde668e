package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Replay implements Bus.
func (b *Redis) Replay(ctx context.Context, connID string, after Cursor) ([]*Frame, error) {
	// Catch local delivery up with Redis first, so the replay covers
	// everything published before the call, as on the memory bus.
	if _, err := b.Head(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	epoch, head := b.epoch, b.head
	// Read under the delivery lock: everything on these channels after
	// head reaches the connection live.
	conn, ok := b.hub.Connection(connID)
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("broker: replay for %s: %w", connID, ErrUnknownConnection)
	}
	if after.Epoch != epoch || after.Seq > head {
		return nil, fmt.Errorf("broker: replay after %s (head %s-%d): %w", after, epoch, head, ErrCursorExpired)
	}
	userID, channels := conn.UserID, conn.Channels

	var missed []Notification
	if len(channels) > 0 {
		args := []any{string(b.keys), after.Seq, head}
		for _, ch := range channels {
			args = append(args, ch)
		}
		res, err := replayScript.Run(ctx, b.client, []string{b.keys.Key("bus", "epoch")}, args...).Slice()
		if err != nil {
			return nil, b.hooks.Wrap("broker: replay histories", err)
		}
		if res[0] != epoch {
			return nil, fmt.Errorf("broker: replay after %s: Redis holds epoch %v: %w", after, res[0], ErrCursorExpired)
		}
		for i, ch := range channels {
			gone, err := asUint(res[1+2*i])
			if err != nil {
				return nil, fmt.Errorf("broker: replay channel %s: %w", ch, err)
			}
			if after.Seq < gone {
				return nil, fmt.Errorf("broker: replay channel %s after %s (dropped through %d): %w", ch, after, gone, ErrCursorExpired)
			}
			entries, _ := res[2+2*i].([]any)
			for j := 0; j+1 < len(entries); j += 2 {
				n, err := decodeHistoryEntry(entries[j], entries[j+1])
				if err != nil {
					return nil, fmt.Errorf("broker: replay channel %s: %w", ch, err)
				}
				missed = append(missed, n)
			}
		}
	}

	own, err := b.log.Since(ctx, userID, after.Seq)
	if err != nil {
		return nil, fmt.Errorf("broker: replay inbox of %s after %s: %w", userID, after, err)
	}
	return replayFrames(missed, own, userID, channels, head, epoch)
}

func decodeHistoryEntry(member, score any) (Notification, error) {
	s, _ := member.(string)
	_, body, ok := strings.Cut(s, " ")
	if !ok {
		return Notification{}, fmt.Errorf("malformed history entry %.40q", s)
	}
	var n Notification
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		return Notification{}, fmt.Errorf("decode history entry: %w", err)
	}
	seq, err := asUint(score)
	if err != nil {
		return Notification{}, fmt.Errorf("history entry score: %w", err)
	}
	n.Seq = seq
	return n, nil
}
