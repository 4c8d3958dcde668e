package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/internal/redistest"
	"notification-service/internal/streamtest"
)

// Issue 16: a send or schedule whose first attempt was interrupted between
// claiming its Idempotency-Key and answering (the instance killed before or
// after the publish, or cut from Redis in between) is retried by the backend
// on another instance: the retry must get through within seconds, with the
// first attempt's id if it had published and a fresh publish if not, and
// never a second copy.
//
// The interruption is exact: instance A reaches Redis through cutProxy,
// which lets everything through until it sees the command that publishes
// (or schedules) the marked notification, then drops that command or its
// answer and cuts A off from Redis for good (what SIGKILL leaves behind:
// a claim nobody will finish or abort) or for a while.

// cutMode is where the proxy interrupts the marked command.
type cutMode int

const (
	// dropRequest cuts before the command reaches Redis: nothing was
	// published.
	dropRequest cutMode = iota
	// dropReply lets the command run and cuts before its answer reaches
	// the instance: it was published, and the instance cannot tell.
	dropReply
)

// cutProxy is a TCP proxy in front of Redis for one instance.
type cutProxy struct {
	ln     net.Listener
	target string
	marker []byte
	mode   cutMode

	mu       sync.Mutex
	cut      bool
	tripped  chan struct{}
	tripOnce sync.Once
	conns    map[net.Conn]struct{}
}

func startCutProxy(t *testing.T, target string, marker string, mode cutMode) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, marker: []byte(marker), mode: mode,
		tripped: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cutAll()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			client.Close()
			continue
		}
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		muted := &sync.Mutex{} // held while the reply side must stay silent
		go p.toServer(client, server, muted)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 {
					muted.Lock()
					cut := p.isCut()
					muted.Unlock()
					if cut {
						return
					}
					if _, werr := client.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					client.Close()
					return
				}
			}
		}()
	}
}

// toServer forwards the instance's commands until the marked one.
func (p *cutProxy) toServer(client, server net.Conn, muted *sync.Mutex) {
	buf := make([]byte, 64<<10)
	var tail []byte // the end of the previous read: a marker may straddle two
	for {
		n, err := client.Read(buf)
		if n > 0 {
			window := append(tail, buf[:n]...)
			if !p.hasTripped() && bytes.Contains(window, p.marker) {
				p.trip(server, buf[:n], muted)
				return
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
			tail = append(tail[:0], window[max(0, len(window)-len(p.marker)):]...)
		}
		if err != nil {
			server.Close()
			return
		}
	}
}

// trip interrupts the marked command as the mode says and cuts the
// instance off from Redis.
func (p *cutProxy) trip(server net.Conn, command []byte, muted *sync.Mutex) {
	if p.mode == dropReply {
		// Silence the answer first, then let the command run.
		muted.Lock()
		p.mu.Lock()
		p.cut = true
		p.mu.Unlock()
		_, _ = server.Write(command)
		muted.Unlock()
		// Wait until Redis has run it: its answer arrives on server.
		_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
	}
	p.cutAll()
	p.tripOnce.Do(func() { close(p.tripped) })
}

// hasTripped says whether the marked command was seen: only the first is
// interrupted.
func (p *cutProxy) hasTripped() bool {
	select {
	case <-p.tripped:
		return true
	default:
		return false
	}
}

func (p *cutProxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// cutAll closes every proxied connection and refuses new ones.
func (p *cutProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// heal lets the instance reach Redis again.
func (p *cutProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// postOnce sends one request with an Idempotency-Key and returns the
// status, the JSON answer and Retry-After (0 when absent).
func postOnce(t *testing.T, s *service, path, key string, body map[string]any) (int, map[string]any, int) {
	t.Helper()
	enc, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	retryAfter, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, m, retryAfter
}

// retryUntilAccepted retries as a backend following the README does: on 409
// idempotency_in_progress and 503 it waits Retry-After (at least a moment)
// and tries again. It returns the accepted answer, when the attempt that
// got it was sent, and how many 409s it met.
func retryUntilAccepted(t *testing.T, s *service, path, key string, body map[string]any, lease time.Duration) (accepted map[string]any, sent time.Time, inProgress int) {
	t.Helper()
	deadline := time.Now().Add(lease + 10*time.Second)
	for {
		sent = time.Now()
		status, m, retryAfter := postOnce(t, s, path, key, body)
		switch status {
		case http.StatusCreated:
			return m, sent, inProgress
		case http.StatusConflict:
			if code := m["error"].(map[string]any)["code"]; code != "idempotency_in_progress" {
				t.Fatalf("retry: 409 %v", m)
			}
			if retryAfter < 1 || time.Duration(retryAfter)*time.Second > lease+time.Second {
				t.Fatalf("retry: 409 with Retry-After %d, want 1..%s", retryAfter, lease)
			}
			inProgress++
		case http.StatusServiceUnavailable:
		default:
			t.Fatalf("retry: %d %v", status, m)
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry: not accepted within %s", lease+10*time.Second)
		}
		// Retry-After is in whole seconds; a backend that waits it out
		// gets through on the next try. Poll a little faster to measure.
		time.Sleep(100 * time.Millisecond)
	}
}

func TestInterruptedSendIsRetriedOnAnotherInstance(t *testing.T) {
	const lease = 2 * time.Second
	srv := redistest.Start(t, redistest.Options{})
	cases := []struct {
		name string
		mode cutMode
		// outage is how long A stays cut from Redis; 0 is for good (A was
		// killed).
		outage time.Duration
		// published says whether the first attempt's publish happened.
		published bool
	}{
		{"instance killed before the publish", dropRequest, 0, false},
		{"instance killed after the publish", dropReply, 0, true},
		{"Redis cut between claim and publish", dropRequest, 1500 * time.Millisecond, false},
	}
	for i, tc := range cases {
		for _, path := range []string{"/api/v1/notifications/send", "/api/v1/notifications/schedule"} {
			t.Run(tc.name+path, func(t *testing.T) {
				t.Parallel()
				is := is.New(t)
				marker := fmt.Sprintf("interrupted-%d-%s", i, strings.TrimPrefix(path, "/api/v1/notifications/"))
				proxy := startCutProxy(t, srv.Addr(), marker, tc.mode)
				prefix := fmt.Sprintf("i%d%s:", i, strings.TrimPrefix(path, "/api/v1/notifications/"))
				env := []string{"REDIS_PREFIX", prefix, "IDEMPOTENCY_CLAIM_LEASE", lease.String()}
				a := startService(t, append([]string{"REDIS_URL", proxy.addr()}, env...)...)
				b := startService(t, append([]string{"REDIS_URL", srv.Addr()}, env...)...)
				user := "u-" + marker
				// A warm-up publish (or schedule) through A loads the
				// scripts, so the marked command is the script call itself:
				// an EVALSHA the proxy lets run must not meet NOSCRIPT.
				send(t, a, map[string]any{"title": "warm-up", "user_id": "someone-else"})
				if strings.HasSuffix(path, "schedule") {
					a.mustSchedule(t, map[string]any{"title": "warm-up", "user_id": "someone-else",
						"scheduled_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
				}

				body := map[string]any{"title": marker, "message": "m", "user_id": user}
				if strings.HasSuffix(path, "schedule") {
					body["scheduled_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
				}
				key := fmt.Sprintf("key-%d-%d", i, len(path)) // not the marker: the claim must go through
				status, first, _ := postOnce(t, a, path, key, body)
				<-proxy.tripped
				is.Equal(status, http.StatusServiceUnavailable) // "nothing was done, retry": the backend retries
				is.Equal(first["error"].(map[string]any)["code"], "store_unavailable")
				if tc.outage > 0 {
					time.Sleep(tc.outage) // the length of the outage is the scenario
					proxy.heal()
				}
				if tc.published {
					// The first attempt did publish: it is there before any retry.
					streamtest.Eventually(t, "the first attempt's copy", func() bool { return pending(t, b, path, user) == 1 })
				}
				reachable := time.Now()

				// Timed to when the accepted retry was sent: its own round
				// trip is not the wait being measured.
				got, sent, inProgress := retryUntilAccepted(t, b, path, key, body, lease)
				took := sent.Sub(reachable)
				t.Logf("accepted %s after Redis was reachable, after %d answers 409 in progress", took.Round(time.Millisecond), inProgress)
				is.True(took < lease+time.Second) // within the lease, never a minute
				id := got["id"].(string)

				// Exactly one copy, with the accepted id.
				is.Equal(pending(t, b, path, user), 1)
				is.Equal(firstID(t, b, path, user), id)
				// The retry's answer is now the key's answer, on any instance.
				status, again, _ := postOnce(t, b, path, key, body)
				is.Equal(status, http.StatusCreated)
				is.Equal(again["id"], id)
				if tc.outage > 0 {
					status, again, _ = postOnce(t, a, path, key, body)
					is.Equal(status, http.StatusCreated)
					is.Equal(again["id"], id)
				}
			})
		}
	}
}

// pending counts the user's notifications (send) or pending schedules
// (schedule).
func pending(t *testing.T, s *service, path, user string) int {
	t.Helper()
	if strings.HasSuffix(path, "send") {
		_, inbox := s.do(t, http.MethodGet, "/api/v1/notifications/user/"+user, nil)
		return int(inbox["total"].(float64))
	}
	_, list := s.do(t, http.MethodGet, "/api/v1/schedules?user_id="+user, nil)
	return int(list["total"].(float64))
}

// firstID is the id of the user's newest notification or first pending
// schedule.
func firstID(t *testing.T, s *service, path, user string) string {
	t.Helper()
	if strings.HasSuffix(path, "send") {
		_, inbox := s.do(t, http.MethodGet, "/api/v1/notifications/user/"+user, nil)
		return inbox["notifications"].([]any)[0].(map[string]any)["id"].(string)
	}
	_, list := s.do(t, http.MethodGet, "/api/v1/schedules?user_id="+user, nil)
	return list["schedules"].([]any)[0].(map[string]any)["id"].(string)
}
