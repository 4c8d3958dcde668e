package main

import (
	"fmt"
	"sync"
)

// ledger is the order in which sends were accepted: acceptance k adds the
// send to the expected list of each of its recipients, under one lock, so
// that "every send accepted before t" is one number (accepted at t) and
// every client's list holds exactly those sends in the same order.
type ledger struct {
	clients []*client

	mu       sync.Mutex
	accepted int32
}

func newLedger(clients []*client) *ledger { return &ledger{clients: clients} }

// accept records sd as accepted by the attempt started at attemptAt and
// answered at at.
func (l *ledger) accept(sd *send, attemptAt, at int64, replayed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sd.accepted, sd.replayed, sd.acceptedAttemptAt, sd.acceptedAt = true, replayed, attemptAt, at
	k := l.accepted
	l.accepted++
	for _, r := range sd.recipients {
		l.clients[r].expect(int32(sd.n), k)
	}
}

// abandon records that sd was never accepted.
func (l *ledger) abandon(sd *send, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sd.abandoned = why
}

// acceptedSoFar is how many sends have been accepted: every client's
// expected list holds all of them that concern it.
func (l *ledger) acceptedSoFar() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
