package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"notification-service/scripts/internal/latency"
)

const sendPath = "/api/v1/notifications/send"

// sender is the backend: a steady stream of sends, each retried until the
// service accepts it (201, or 201 replayed) on 5xx, timeouts, cut
// connections, 429 and 409 idempotency_in_progress, on the next instance
// each time (C through the proxy), with the same Idempotency-Key and body. It owns a goroutine per
// unresolved send; wait returns when all have ended.
type sender struct {
	clock
	cfg    config
	layout *layout
	ledger *ledger
	ev     *events
	bases  [instanceCount]string
	http   *http.Client
	slots  chan struct{}
	wg     sync.WaitGroup
	done   chan struct{}
	// dispatched is closed when no new send will start.
	dispatched chan struct{}
	// started is set by start: wait waits for done only then.
	started atomic.Bool
	// unresolved counts sends neither accepted nor abandoned yet.
	unresolved atomic.Int64

	mu       sync.Mutex
	sends    []*send
	attempts []attemptTiming
	// problems are answers that are bugs here, a few kept as samples.
	problems []string
}

func newSender(cfg config, clk clock, l *layout, led *ledger, ev *events, bases [instanceCount]string) *sender {
	return &sender{
		clock: clk, cfg: cfg, layout: l, ledger: led, ev: ev, bases: bases,
		http: &http.Client{Transport: &http.Transport{
			// Proxy stays nil: nothing here goes through HTTP_PROXY.
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: cfg.inFlight,
		}},
		slots: make(chan struct{}, cfg.inFlight),
		done:  make(chan struct{}),

		dispatched: make(chan struct{}),
	}
}

// start sends until ctx (the sending period) ends; each send retries
// under resolve, which ends when the run stops waiting for unresolved
// sends. wait returns once every send's goroutine has ended.
func (s *sender) start(ctx, resolve context.Context) {
	s.started.Store(true)
	go func() {
		defer close(s.done)
		s.dispatch(ctx, resolve)
		close(s.dispatched)
		s.wg.Wait()
	}()
}

// wait waits for the sender to end; a sender never started ends at once.
func (s *sender) wait() {
	if s.started.Load() {
		<-s.done
	}
}

// dispatch starts send n at n/rate seconds until ctx ends, each in a
// goroutine of its own that retries under resolve.
func (s *sender) dispatch(ctx, resolve context.Context) {
	rng := rand.New(rand.NewPCG(s.cfg.seed, 0x5e4d))
	start := time.Now()
	for n := 0; n < maxSends; n++ {
		due := start.Add(time.Duration(float64(n) / s.cfg.rate * float64(time.Second)))
		if sleep(ctx, time.Until(due)) != nil {
			return
		}
		sd := s.layout.newSend(n, s.cfg, rng)
		s.mu.Lock()
		s.sends = append(s.sends, sd)
		s.mu.Unlock()
		s.unresolved.Add(1)
		s.wg.Go(func() {
			s.deliver(resolve, sd)
			s.unresolved.Add(-1)
		})
	}
}

// pending counts sends not yet accepted or abandoned.
func (s *sender) pending() int { return int(s.unresolved.Load()) }

// deliver makes attempts until sd is accepted, refused for good or ctx
// ends.
func (s *sender) deliver(ctx context.Context, sd *send) {
	rng := rand.New(rand.NewPCG(s.cfg.seed, uint64(sd.n)<<8|1))
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if sleep(ctx, s.retryDelay(rng, attempt)) != nil {
				s.ledger.abandon(sd, "still unaccepted when the run stopped waiting")
				return
			}
		}
		inst := (sd.first + attempt) % instanceCount
		started := s.now()
		if attempt == 0 {
			sd.firstAt = started
		}
		sd.attempts++
		a := s.post(ctx, inst, sd)
		status, code, replayed, err := a.status, a.code, a.replayed, a.err
		if ctx.Err() != nil && status != http.StatusCreated {
			s.ledger.abandon(sd, "still unaccepted when the run stopped waiting")
			return
		}
		now := s.now()
		k := sendOutcome(status, code, err)
		s.record(attemptTiming{at: started, wait: a.wait, took: a.took, kind: k})
		switch k {
		case send201:
			s.ev.add(send201, now)
			if replayed {
				s.ev.add(sendReplayed, now)
			}
			s.ledger.accept(sd, started, now, replayed)
			return
		case send409Other, send4xx:
			s.ev.add(k, now)
			s.problem("send %d: HTTP %d %s", sd.n, status, code)
			s.ledger.abandon(sd, "HTTP "+strconv.Itoa(status)+" "+code)
			return
		case send409InProgress:
			s.ev.add(k, now)
			sd.inProgress++
		default:
			s.ev.add(k, now)
		}
	}
}

// retryDelay is full jitter from 50 ms up to 2 s: a backend's job queue
// retries sooner than a browser reconnects.
func (s *sender) retryDelay(rng *rand.Rand, attempt int) time.Duration {
	return backoff(rng, attempt, 50*time.Millisecond, 2*time.Second)
}

// answer is one attempt's outcome: the status, the error code of a JSON
// error, whether the answer was replayed, and how long the attempt waited
// for a slot and then for its answer.
type answer struct {
	status     int
	code       string
	replayed   bool
	err        error
	wait, took time.Duration
}

// attemptTiming is one request, for the per-window timings.
type attemptTiming struct {
	at         int64
	wait, took time.Duration
	kind       kind
}

// post makes one attempt on instance inst.
func (s *sender) post(ctx context.Context, inst int, sd *send) (a answer) {
	began := time.Now()
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		a.err = ctx.Err()
		return a
	}
	defer func() { <-s.slots }()
	a.wait = time.Since(began)
	began = time.Now()
	defer func() { a.took = time.Since(began) }()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.bases[inst]+sendPath, bytes.NewReader(sd.body))
	if err != nil {
		a.err = err
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", sd.key)
	resp, err := s.http.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil && resp.StatusCode == http.StatusCreated {
		// The answer was cut: we cannot know it was accepted; retry.
		a.err = err
		return a
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	a.status, a.code, a.replayed = resp.StatusCode, e.Error.Code, resp.Header.Get("Idempotent-Replayed") == "true"
	return a
}

// sendOutcome classifies one attempt's answer.
func sendOutcome(status int, code string, err error) kind {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return sendTimeout
	case err != nil:
		return sendConnError
	case status == http.StatusCreated:
		return send201
	case status == http.StatusConflict && code == "idempotency_in_progress":
		return send409InProgress
	case status == http.StatusConflict:
		return send409Other
	case status == http.StatusTooManyRequests:
		return send429
	case status == http.StatusServiceUnavailable:
		return send503
	case status >= 500:
		return send5xx
	}
	return send4xx
}

func (s *sender) record(a attemptTiming) {
	s.mu.Lock()
	s.attempts = append(s.attempts, a)
	s.mu.Unlock()
}

// timings summarises the attempts started in [from, to]: how long they
// waited for one of the -in-flight slots, and then for their answer.
func (s *sender) timings(from, to int64) (wait, took latency.Summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var w, t []time.Duration
	for _, a := range s.attempts {
		if a.at >= from && a.at <= to {
			w, t = append(w, a.wait), append(t, a.took)
		}
	}
	return latency.Summarize(w), latency.Summarize(t)
}

func (s *sender) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) < 10 {
		s.problems = append(s.problems, sprintf(format, args...))
	}
}

// all is every send made; call after wait.
func (s *sender) all() []*send {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sends
}
