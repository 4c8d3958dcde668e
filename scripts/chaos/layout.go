package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"

	"notification-service/scripts/internal/loopback"
)

// layout is who holds what, fixed for the whole run: every client's user,
// channels, transport, home instance and source address, and the indexes
// that turn a send's addressing into the clients that must receive it. The
// routing rule is the README's: a client gets a notification addressed to
// its user that names no channel or names one it holds, and a broadcast on
// a channel it holds; once, however many channels match.
type layout struct {
	runID     string
	clients   []clientSpec
	byUser    [][]int32
	byChannel [][]int32
}

type clientSpec struct {
	user      int
	channels  []int // sorted
	transport string
	// home is the instance the client tries first; the next ones follow
	// in order when it fails, as behind a load balancer.
	home   int
	source *net.TCPAddr
}

func newLayout(cfg config, runID string, rng *rand.Rand) *layout {
	l := &layout{runID: runID, clients: make([]clientSpec, cfg.clients),
		byUser: make([][]int32, cfg.users), byChannel: make([][]int32, cfg.channels)}
	for i := range l.clients {
		held := rng.Perm(cfg.channels)[:rng.IntN(cfg.maxHeld+1)]
		slices.Sort(held)
		transport := "sse"
		if rng.Float64() < cfg.wsShare {
			transport = "ws"
		}
		// Users 0..clients-users-1 get two clients each (a user's tabs),
		// whose homes are different instances.
		user, tab := i%cfg.users, i/cfg.users
		s := clientSpec{
			user:      user,
			channels:  held,
			transport: transport,
			home:      (user + tab) % instanceCount,
			source:    loopback.Source(2, i/cfg.perSource),
		}
		l.clients[i] = s
		l.byUser[s.user] = append(l.byUser[s.user], int32(i))
		for _, ch := range held {
			l.byChannel[ch] = append(l.byChannel[ch], int32(i))
		}
	}
	return l
}

func (l *layout) userName(u int) string    { return fmt.Sprintf("cx-%s-u%d", l.runID, u) }
func (l *layout) channelName(c int) string { return fmt.Sprintf("cx-%s-c%d", l.runID, c) }

// recipients is the clients that must receive a notification addressed to
// users (none: a broadcast) on channels, each once, in ascending order.
func (l *layout) recipients(users, channels []int) []int32 {
	var out []int32
	if len(users) == 0 {
		for _, ch := range channels {
			out = append(out, l.byChannel[ch]...)
		}
	} else {
		for _, u := range users {
			for _, i := range l.byUser[u] {
				if len(channels) == 0 || holdsAny(l.clients[i].channels, channels) {
					out = append(out, i)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func holdsAny(held, wanted []int) bool {
	for _, c := range wanted {
		if _, ok := slices.BinarySearch(held, c); ok {
			return true
		}
	}
	return false
}
