package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"notification-service/broker"
)

// What the bus tests share: a connection that records what it is given,
// an inbox that cannot be written, notifications to publish, and reading
// frames back.

// recorder is a fake connection recording the frames delivered to it; check,
// when set, runs inside Deliver.
type recorder struct {
	check func(*broker.Frame)

	mu     sync.Mutex
	frames []*broker.Frame
	more   chan struct{}
}

func newRecorder(check func(*broker.Frame)) *recorder {
	return &recorder{check: check, more: make(chan struct{}, 1)}
}

func (r *recorder) Deliver(f *broker.Frame) {
	if r.check != nil {
		r.check(f)
	}
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *recorder) got() []*broker.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.frames)
}

// wait returns the frames once n have arrived, failing after contractWait
// or if more than n arrive.
func (r *recorder) wait(t *testing.T, n int) []*broker.Frame {
	t.Helper()
	deadline := time.After(contractWait)
	for {
		got := r.got()
		if len(got) > n {
			t.Fatalf("got %d frames, want %d: seqs %v", len(got), n, frameSeqs(got))
		}
		if len(got) == n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("timed out with %d of %d frames", len(got), n)
		}
	}
}

var errStoreDown = errors.New("store down")

// failingLog is an inbox that cannot be written.
type failingLog struct{}

func (failingLog) Append(context.Context, ...broker.Notification) error { return errStoreDown }
func (failingLog) Since(context.Context, string, uint64) ([]broker.Notification, error) {
	return nil, nil
}

func note(userID string) broker.Notification {
	return broker.Notification{ID: broker.NewID(), Type: "info", Title: "t", UserID: userID, Timestamp: broker.Now()}
}

func noteOn(userID string, channels ...string) broker.Notification {
	n := note(userID)
	n.Channels = channels
	return n
}

func broadcast(channels ...string) broker.Notification {
	return noteOn("", channels...)
}

func seqsOf(ns []broker.Notification) []uint64 {
	out := make([]uint64, len(ns))
	for i, n := range ns {
		out[i] = n.Seq
	}
	return out
}

func frameSeqs(fs []*broker.Frame) []uint64 {
	out := make([]uint64, len(fs))
	for i, f := range fs {
		out[i] = f.Seq
	}
	return out
}

func decode(t *testing.T, f *broker.Frame) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.JSON, &m); err != nil {
		t.Fatalf("frame is not a JSON object: %q", f.JSON)
	}
	return m
}

// replay asks bus for what a connection of userID holding channels missed
// after cursor, through a connection registered for the question: the bus
// reads a connection's channels from the hub.
func replay(t *testing.T, hub *broker.Hub, bus broker.Bus, userID string, channels []string, after broker.Cursor) ([]*broker.Frame, error) {
	t.Helper()
	id := "replay-" + broker.NewID()
	if err := hub.Register(id, userID, channels, newRecorder(nil)); err != nil {
		t.Fatal(err)
	}
	defer hub.Unregister(id)
	return bus.Replay(t.Context(), id, after)
}
