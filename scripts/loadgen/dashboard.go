package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Open dashboards (-dashboards N): each asks what web/dashboard.js asks,
// at its rate: GET /api/v1/dashboard/stats every second and
// /api/v1/analytics every other second over one keep-alive connection, and
// the audit trail as one stream (GET /api/v1/dashboard/audit/stream, on a
// connection of its own as a browser's fetch of a stream holds one), read
// as it comes and reopened with after=<the last id> when it ends. They run
// from the moment the server answers until the run ends, so a row measured
// with them shows what an open dashboard costs the service.

// dashboards are the viewers of one run.
type dashboards struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	requests atomic.Int64
	failed   atomic.Int64
}

// openDashboards starts n viewers of base; stop ends them.
func openDashboards(ctx context.Context, base, apiKey string, n int) *dashboards {
	ctx, cancel := context.WithCancel(ctx)
	d := &dashboards{cancel: cancel}
	for range n {
		d.wg.Go(func() { d.view(ctx, base, apiKey) })
		d.wg.Go(func() { d.followTrail(ctx, base, apiKey) })
	}
	return d
}

// stop ends the viewers and waits for them.
func (d *dashboards) stop() {
	d.cancel()
	d.wg.Wait()
}

func (d *dashboards) view(ctx context.Context, base, apiKey string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	get := func(path string) []byte {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil
		}
		if apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+apiKey)
		}
		res, err := client.Do(req)
		if ctx.Err() != nil {
			return nil // the run ended mid-request: not a failure of the server
		}
		d.requests.Add(1)
		if err != nil {
			d.failed.Add(1)
			return nil
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			d.failed.Add(1)
			return nil
		}
		return body
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		get("/api/v1/dashboard/stats")
		if i%2 == 0 {
			get("/api/v1/analytics")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// followTrail holds the page's audit stream open, reading every event, and
// reopens it after the last id it read when the server ends it; each
// opening counts as a request.
func (d *dashboards) followTrail(ctx context.Context, base, apiKey string) {
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	after := ""
	for ctx.Err() == nil {
		q := url.Values{"limit": {"100"}}
		if after != "" {
			q.Set("after", after)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/dashboard/audit/stream?"+q.Encode(), nil)
		if err != nil {
			return
		}
		if apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+apiKey)
		}
		res, err := client.Do(req)
		if ctx.Err() != nil {
			return // the run ended: not a failure of the server
		}
		d.requests.Add(1)
		if err != nil || res.StatusCode != http.StatusOK {
			d.failed.Add(1)
			if err == nil {
				res.Body.Close()
			}
			if sleep(ctx, time.Second) != nil {
				return
			}
			continue
		}
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				after = id
			}
		}
		res.Body.Close()
		if ctx.Err() == nil && sc.Err() != nil {
			d.failed.Add(1)
		}
	}
}
