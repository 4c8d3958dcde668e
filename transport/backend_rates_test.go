package transport_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/matryer/is"
)

// TestBackendSendsAreNotRateLimited: a Laravel queue worker holding the
// API key sends a 10,000-notification burst from one address (2,500
// requests, each to the same four users), past RATE_SENDS_PER_ADDR's and
// RATE_SENDS_PER_USER's bursts (the defaults: 2,000 requests and 100
// notifications), and every send is accepted; without the key (open mode)
// the limits still hold.
func TestBackendSendsAreNotRateLimited(t *testing.T) {
	is := is.New(t)
	ts := newTestServer(t, func(c *testConfig) {
		c.APIKey = secAPIKey
		c.Rates.SendsPerAddr.PerSecond, c.Rates.SendsPerAddr.Burst = 1000, 2000
		c.Rates.SendsPerUser.PerSecond, c.Rates.SendsPerUser.Burst = 10, 100
	})
	const requests, workers = 2_500, 8
	var accepted, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < requests; i += workers {
				status, _, _ := ts.do(t, http.MethodPost, "/api/v1/notifications/send",
					fmt.Sprintf(`{"title":"campaign %d","user_ids":["u1","u2","u3","u4"]}`, i), "Authorization", "Bearer "+secAPIKey)
				if status == http.StatusCreated {
					accepted.Add(1)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	is.Equal(refused.Load(), int64(0))
	is.Equal(accepted.Load()*4, int64(10_000))

	open := newTestServer(t, func(c *testConfig) {
		c.Rates.SendsPerUser.PerSecond, c.Rates.SendsPerUser.Burst = 10, 100
	})
	limited := 0
	for i := range 150 {
		status, _, _ := open.do(t, http.MethodPost, "/api/v1/notifications/send", fmt.Sprintf(`{"title":"%d","user_id":"u1"}`, i))
		if status == http.StatusTooManyRequests {
			limited++
		}
	}
	is.True(limited > 0) // open mode keeps the per-user bound
}
