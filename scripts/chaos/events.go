package main

import "sync"

// kind is something that happened to a client or a send, counted over the
// whole run and per fault window.
type kind uint8

const (
	connected         kind = iota // a stream opened (ready received)
	reconnected                   // ... and it was not the client's first
	dropped                       // a live stream ended (the client will reconnect)
	silent                        // a live stream heard nothing for -idle-timeout and was dropped by the client
	connectRefused                // connect failed at TCP level (instance down)
	connect429                    // connect answered 429
	connect503                    // connect answered 503
	connectOther                  // connect failed otherwise (other status, handshake cut, no ready)
	resetEvent                    // the server sent a reset event
	send201                       // a send was accepted
	sendReplayed                  // ... as an Idempotent-Replayed answer
	send409InProgress             // 409 idempotency_in_progress
	send409Other                  // 409 with another code (a key reused with another body: a bug here)
	send429                       // 429
	send503                       // 503
	send5xx                       // another 5xx
	sendTimeout                   // no answer within -send-timeout
	sendConnError                 // the request could not be made or its answer was cut
	send4xx                       // another 4xx: the send is abandoned
	kindCount
)

var kindNames = [kindCount]string{
	"connected", "reconnected", "dropped", "silent", "connect_refused", "connect_429", "connect_503", "connect_other",
	"reset", "send_201", "send_replayed", "send_409_in_progress", "send_409_other", "send_429", "send_503",
	"send_5xx", "send_timeout", "send_conn_error", "send_4xx",
}

// events records what happened when, for per-window counts. Appends come
// from every client and send goroutine; they are rare next to deliveries,
// so one mutex is enough.
type events struct {
	mu  sync.Mutex
	at  []int64
	got []kind
}

func (e *events) add(k kind, at int64) {
	e.mu.Lock()
	e.at = append(e.at, at)
	e.got = append(e.got, k)
	e.mu.Unlock()
}

// count is how many events of each kind happened in [from, to).
func (e *events) count(from, to int64) map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n [kindCount]int
	for i, at := range e.at {
		if at >= from && at < to {
			n[e.got[i]]++
		}
	}
	out := make(map[string]int, kindCount)
	for k, c := range n {
		if c > 0 {
			out[kindNames[k]] = c
		}
	}
	return out
}
