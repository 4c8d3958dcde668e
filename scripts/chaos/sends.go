package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// send is one logical notification the backend wants out: one
// Idempotency-Key and one body for all its attempts, so the server can
// recognise a retry.
type send struct {
	n    int
	kind string // "user", "user_channel", "batch" or "broadcast"
	key  string
	body []byte
	// recipients is the clients that must receive it once it is accepted.
	recipients []int32
	// first is the instance of the first attempt; retries go to the next.
	first int

	// Written by the send's goroutine; read once the sender has ended.
	firstAt int64 // start of the first attempt
	// acceptedAttemptAt is the start of the attempt that was answered 201,
	// acceptedAt its answer.
	acceptedAttemptAt int64
	acceptedAt        int64
	attempts          int
	// inProgress counts its 409 idempotency_in_progress answers.
	inProgress int
	accepted   bool
	replayed   bool // the 201 was an Idempotent-Replayed answer
	abandoned  string
}

// sendBody is the REST body of a send.
type sendBody struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Message  string         `json:"message"`
	UserID   string         `json:"user_id,omitempty"`
	UserIDs  []string       `json:"user_ids,omitempty"`
	Channels []string       `json:"channels,omitempty"`
	Data     map[string]int `json:"data"`
}

// newSend draws send n's addressing: a broadcast on one or two channels, or
// a send to one user (sometimes naming a channel, so only that user's
// clients holding it get it) or to a few users at once.
func (l *layout) newSend(n int, cfg config, rng *rand.Rand) *send {
	s := &send{n: n, key: fmt.Sprintf("cx-%s-%d", l.runID, n), first: n % instanceCount}
	var users, channels []int
	switch {
	case rng.Float64() < cfg.broadcastShare:
		s.kind = "broadcast"
		channels = []int{rng.IntN(cfg.channels)}
		if cfg.channels > 1 && rng.IntN(5) == 0 {
			channels = append(channels, (channels[0]+1+rng.IntN(cfg.channels-1))%cfg.channels)
		}
	case rng.Float64() < cfg.batchShare:
		s.kind = "batch"
		users = rng.Perm(cfg.users)[:min(cfg.users, 2+rng.IntN(4))]
	case rng.Float64() < cfg.userChannelShare:
		s.kind = "user_channel"
		users = []int{rng.IntN(cfg.users)}
		channels = []int{l.someChannelOf(users[0], cfg.channels, rng)}
	default:
		s.kind = "user"
		users = []int{rng.IntN(cfg.users)}
	}
	s.recipients = l.recipients(users, channels)

	b := sendBody{Type: "chaos", Title: fmt.Sprintf("cx-%s-%d", l.runID, n), Message: "chaos " + s.kind, Data: map[string]int{"n": n}}
	for _, ch := range channels {
		b.Channels = append(b.Channels, l.channelName(ch))
	}
	switch len(users) {
	case 0:
	case 1:
		b.UserID = l.userName(users[0])
	default:
		for _, u := range users {
			b.UserIDs = append(b.UserIDs, l.userName(u))
		}
	}
	s.body, _ = json.Marshal(b) // plain strings and ints: cannot fail
	return s
}

// someChannelOf is mostly a channel one of user u's clients holds, so the
// send reaches someone; sometimes any channel, so it may reach nobody
// (it still goes to the inbox).
func (l *layout) someChannelOf(u, channels int, rng *rand.Rand) int {
	var held []int
	for _, i := range l.byUser[u] {
		held = append(held, l.clients[i].channels...)
	}
	if len(held) > 0 && rng.IntN(4) != 0 {
		return held[rng.IntN(len(held))]
	}
	return rng.IntN(channels)
}
