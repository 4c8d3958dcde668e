// Command chaos proves "no loss under faults at scale" for the notification
// service, on one machine over loopback: a redis-server with its
// append-only file, three instances of the service on it, a TCP proxy of
// its own in front of the third, thousands of SSE and WebSocket clients
// that reconnect and resume like careful browser clients, a backend that
// sends with Idempotency-Key and retries, and a schedule of faults (an
// instance SIGKILLed and restarted, Redis shut down and restarted, the
// proxy cutting and stalling connections, a rolling SIGTERM restart). Each
// client knows exactly what it must receive; the run reports what was
// lost, duplicated, out of order or delivered without being accepted, how
// long each fault took to recover from, and latency inside and outside the
// faults.
//
//	go run ./scripts/chaos -short          # CI: 300 clients, under two minutes
//	go run ./scripts/chaos                 # 6,000 clients, 2,000 per instance
//	go run ./scripts/chaos -clients 3000 -faults kill,redis -json /tmp/chaos.json
//
// A summary goes to stderr and one JSON object to the -json file (default:
// $TMPDIR/chaos-<run>.json). It exits 0 when nothing was
// lost, duplicated, out of order, phantom or misrouted, no client was left
// disconnected, no reset arrived and every send was accepted; 1 otherwise;
// 2 on bad flags; 3 when the cluster could not be set up. It is a test
// tool, not part of the service: Linux only (/proc, socket options,
// 127.0.0.x source addresses), and it needs redis-server and Go on PATH.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"notification-service/scripts/internal/proc"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "chaos:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, cfg, os.Stderr))
}

// run does one chaos run, reports it and returns the exit code.
func run(ctx context.Context, cfg config, stderr io.Writer) int {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "chaos %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	r := &runner{cfg: cfg, clock: clock{start: time.Now()}, logf: logf, runID: newRunID(), work: cfg.workDir, loadStart: proc.LoadAverage()}
	logf("run %s; load average %.2f %.2f %.2f", r.runID, r.loadStart[0], r.loadStart[1], r.loadStart[2])
	err := r.run(ctx)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = errors.Join(err, fmt.Errorf("timed out after -timeout %s", cfg.timeout))
	}
	if errors.Is(err, errSetup) {
		logf("%v", err)
		if r.work != "" {
			logf("work directory kept: %s", r.work)
		}
		return 3
	}
	res := r.result(err)
	res.printSummary(stderr)
	path := cfg.jsonPath
	if path == "" {
		path = filepath.Join(os.TempDir(), "chaos-"+r.runID+".json")
	}
	if werr := res.write(path); werr != nil {
		logf("write the result: %v", werr)
		return 1
	}
	logf("result written to %s", path)
	if res.OK && !cfg.keep && cfg.workDir == "" {
		_ = os.RemoveAll(r.work)
	} else {
		logf("work directory kept (logs, Redis data): %s", r.work)
	}
	if !res.OK {
		return 1
	}
	return 0
}

// newRunID names a run in titles, user and channel names and
// Idempotency-Keys, so runs never count each other's notifications.
func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}
