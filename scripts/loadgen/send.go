package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sender posts to the REST API over a few kept-alive connections, as a
// backend would.
type sender struct {
	client *http.Client
	base   string
	apiKey string
}

func newSender(base, apiKey string, workers int) *sender {
	return &sender{
		client: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				// Proxy stays nil: a load test never goes through
				// HTTP_PROXY.
				DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
				MaxIdleConnsPerHost: workers,
			},
		},
		base:   strings.TrimSuffix(base, "/"),
		apiKey: apiKey,
	}
}

// post sends one JSON body to path and expects 201 Created.
func (sd *sender) post(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sd.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if sd.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+sd.apiKey)
	}
	resp, err := sd.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // read to the end so the connection is reused
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %s%s: %s", path, resp.Status, statusHint(resp.StatusCode), bytes.TrimSpace(answer))
	}
	return nil
}

// statusHint says what to change when the server refuses the load itself.
func statusHint(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return " (rate limited: start the server with its rate limits off, as scripts/bench does)"
	case http.StatusUnauthorized, http.StatusForbidden:
		return " (the server checks credentials: pass its API_KEY with -api-key, its JWT_SECRET with -jwt-secret)"
	}
	return ""
}

// batch is count requests to one path: request k has body(k).
type batch struct {
	path  string
	count int
	body  func(k int) []byte
	// rate is requests per second; 0 sends as fast as the workers go.
	rate    float64
	workers int
}

// sendOutcome says when each request of a batch was sent and whether the
// server accepted it.
type sendOutcome struct {
	// sentAt[k] is the time just before request k's call, from now().
	sentAt   []int64
	accepted []bool
	failures int
	firstErr error
}

// send runs b: a dispatcher paces the requests (request k is due at
// k/rate seconds) and hands them to b.workers concurrent posters. A
// request is timed when a worker takes it, so a server that answers slowly
// shows up as latency, not as a gap the pacing hides.
func (sd *sender) send(ctx context.Context, b batch, now func() int64) sendOutcome {
	out := sendOutcome{sentAt: make([]int64, b.count), accepted: make([]bool, b.count)}
	jobs := make(chan int)
	var failures atomic.Int64
	var errOnce sync.Once
	var workers sync.WaitGroup
	for range max(b.workers, 1) {
		workers.Go(func() {
			for k := range jobs {
				body := b.body(k)
				out.sentAt[k] = now()
				if err := sd.post(ctx, b.path, body); err != nil {
					failures.Add(1)
					errOnce.Do(func() { out.firstErr = err })
					continue
				}
				out.accepted[k] = true
			}
		})
	}

	start := time.Now()
dispatch:
	for k := range b.count {
		if b.rate > 0 {
			due := start.Add(time.Duration(float64(k) / b.rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-ctx.Done():
					break dispatch
				case <-time.After(wait):
				}
			}
		}
		select {
		case jobs <- k:
		case <-ctx.Done():
			break dispatch
		}
	}
	close(jobs)
	workers.Wait()
	out.failures = int(failures.Load())
	for k := range b.count {
		if !out.accepted[k] && out.sentAt[k] == 0 {
			out.failures++ // never sent: the run timed out first
		}
	}
	if out.firstErr == nil && ctx.Err() != nil && out.failures > 0 {
		out.firstErr = ctx.Err()
	}
	return out
}
