package transport_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"notification-service/internal/streamtest"
)

// TestNoGoroutineLeak: a thousand connections that come and go leave no
// goroutine and no hub entry behind.
func TestNoGoroutineLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	ts := newTestServer(t)
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws?"

	connectSSE := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/sse?"+query("user_id", fmt.Sprint("u", i%7), "channels", "a,b"), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: ready" {
				return nil
			}
		}
		return fmt.Errorf("sse %d: no ready event: %v", i, sc.Err())
	}
	connectWS := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, wsURL+query("user_id", fmt.Sprint("u", i%7), "channels", "a"), &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			return err
		}
		_, data, err := conn.Read(ctx)
		if err != nil || !strings.Contains(string(data), `"event":"ready"`) {
			conn.CloseNow()
			return fmt.Errorf("ws %d: no ready frame: %v", i, err)
		}
		if i%2 == 0 {
			return conn.Close(websocket.StatusNormalClosure, "")
		}
		return conn.CloseNow()
	}

	// One of each first, so whatever starts lazily is in the baseline.
	if err := connectSSE(0); err != nil {
		t.Fatal(err)
	}
	if err := connectWS(0); err != nil {
		t.Fatal(err)
	}
	streamtest.Eventually(t, "the hub to empty", func() bool { return ts.Hub.Len() == 0 })
	tr.CloseIdleConnections()
	ts.Client().CloseIdleConnections()
	baseline := runtime.NumGoroutine()

	const batches, perBatch = 100, 10 // 500 SSE and 500 WebSocket
	for b := range batches {
		var wg sync.WaitGroup
		errs := make(chan error, perBatch)
		for j := range perBatch {
			i := b*perBatch + j
			wg.Go(func() {
				if i%2 == 0 {
					errs <- connectSSE(i)
				} else {
					errs <- connectWS(i)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	streamtest.Eventually(t, "the hub to empty", func() bool { return ts.Hub.Len() == 0 })
	const slack = 5
	n := 0
	func() {
		// If they never come back, the stacks say what is left.
		defer func() {
			if t.Failed() {
				buf := make([]byte, 1<<20)
				t.Logf("%d goroutines, baseline %d:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
			}
		}()
		streamtest.Eventually(t, fmt.Sprintf("the goroutines back to the baseline of %d (+%d)", baseline, slack), func() bool {
			tr.CloseIdleConnections()
			ts.Client().CloseIdleConnections()
			n = runtime.NumGoroutine()
			return n <= baseline+slack
		})
	}()
	// A connection leaves the hub before its end is recorded.
	streamtest.Eventually(t, "1002 disconnect records", func() bool { return len(ts.Logs.Records("disconnect")) == 1002 })
}
