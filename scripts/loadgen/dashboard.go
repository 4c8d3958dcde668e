package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Open dashboards (-dashboards N): each asks what web/dashboard.js asks,
// at its rate, over one keep-alive connection as a browser tab does:
// GET /api/v1/dashboard/stats and /api/v1/dashboard/audit (after the last
// event it saw) every second, /api/v1/analytics every other second. They
// run from the moment the server answers until the run ends, so a row
// measured with them shows what an open dashboard costs the service.

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
	after := ""
	for i := 0; ; i++ {
		get("/api/v1/dashboard/stats")
		q := url.Values{"limit": {"100"}}
		if after != "" {
			q.Set("after", after)
		}
		var trail struct {
			Last string `json:"last"`
		}
		if json.Unmarshal(get("/api/v1/dashboard/audit?"+q.Encode()), &trail) == nil && trail.Last != "" {
			after = trail.Last
		}
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
