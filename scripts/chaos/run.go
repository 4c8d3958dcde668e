package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"notification-service/scripts/internal/loopback"
)

// shutdownTimeout is the instances' SHUTDOWN_TIMEOUT: a rolling restart
// waits this long plus a margin for each to exit.
const shutdownTimeout = 5 * time.Second

// errSetup marks a run that could not start its cluster: exit code 3.
var errSetup = errors.New("setup failed")

// runner is one chaos run: the processes, the clients, the sender, the
// monitor, and the fault windows. run owns every goroutine it starts and
// ends them before it returns.
type runner struct {
	cfg   config
	clock clock
	logf  func(string, ...any)
	runID string
	work  string

	redis     *redisServer
	instances [instanceCount]*instance
	proxy     *proxy

	layout  *layout
	ev      *events
	ledger  *ledger
	fleet   *fleet
	sender  *sender
	monitor *monitor

	windows   []*window
	final     *window
	liveAtEnd int
	loadStart [3]float64
	fdLimit   uint64 // this process's open-file limit, raised to its hard limit
}

// run sets the cluster up, runs the clients, the sends and the faults, and
// tears everything down. An error means the run could not be completed;
// what it found is in r either way.
func (r *runner) run(ctx context.Context) error {
	if err := r.setup(ctx); err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	defer r.teardown()

	r.layout = newLayout(r.cfg, r.runID, rand.New(rand.NewPCG(r.cfg.seed, 0x1a4)))
	r.ev = &events{}
	var addrs [instanceCount]string
	for i, in := range r.instances {
		addrs[i] = strings.TrimPrefix(in.base(), "http://")
	}
	addrs[proxied] = r.proxy.addr()
	r.fleet = newFleet(r.cfg, r.clock, r.layout, r.ev, addrs)
	r.ledger = newLedger(r.fleet.clients)
	r.monitor = &monitor{clock: r.clock, fleet: r.fleet, ledger: r.ledger, pids: r.pids}

	runCtx, stopAll := context.WithCancel(ctx)
	var bg sync.WaitGroup
	sendCtx, stopSending := context.WithCancel(runCtx)
	resolveCtx, giveUp := context.WithCancel(runCtx)
	// The backend reaches C through the proxy too, as through a load
	// balancer: a cut or stalled send is retried with its key elsewhere.
	var bases [instanceCount]string
	for i, in := range r.instances {
		bases[i] = in.base()
	}
	bases[proxied] = "http://" + r.proxy.addr()
	r.sender = newSender(r.cfg, r.clock, r.layout, r.ledger, r.ev, bases)
	r.monitor.sender = r.sender
	// One place ends everything this function starts, in order: the
	// sends, the clients, then the monitor.
	defer func() {
		stopSending()
		giveUp()
		r.sender.wait()
		r.fleet.stop()
		stopAll()
		bg.Wait()
	}()

	r.fleet.start(runCtx)
	bg.Go(func() { r.monitor.run(runCtx) })
	r.logf("opening %d clients (%d SSE, %d WebSocket) from %d source addresses; instance C behind the proxy at %s for clients and sends",
		len(r.fleet.clients), r.count("sse"), r.count("ws"), sourcesFor(r.cfg.clients, r.cfg.perSource), r.proxy.addr())
	opening := time.Now()
	if err := r.fleet.waitLive(runCtx, r.cfg.openWithin); err != nil {
		return fmt.Errorf("opening the clients: %w", err)
	}
	r.monitor.mark("every client live")
	r.logf("every client live in %.1fs; sending %.0f/s", time.Since(opening).Seconds(), r.cfg.rate)
	r.sender.start(sendCtx, resolveCtx)

	if err := sleep(runCtx, r.cfg.warmup); err != nil {
		return err
	}
	faultRng := rand.New(rand.NewPCG(r.cfg.seed, 0xfa17))
	for _, name := range r.cfg.faults {
		w := r.fault(runCtx, name, faultRng)
		if w.err != nil {
			return fmt.Errorf("fault %s: %w", name, w.err)
		}
		if err := sleep(runCtx, r.cfg.quiet); err != nil {
			return err
		}
	}

	stopSending()
	<-r.sender.dispatched // from here pending only falls
	r.monitor.mark("sending stopped")
	r.logf("sending stopped; waiting up to %s for %d unresolved sends", r.cfg.resolveMax, r.sender.pending())
	r.awaitResolved(runCtx)
	giveUp()
	r.sender.wait()

	r.final = &window{name: "final", start: r.clock.now(), recovered: -1}
	r.final.end = r.final.start
	r.final.through = r.ledger.acceptedSoFar()
	if at, ok := r.monitor.waitCaughtUp(runCtx, r.final.through, r.cfg.settleMax); ok {
		r.final.recovered = at
	}
	r.logf("final catch-up: %s", r.describeRecovery(r.final))
	_ = sleep(runCtx, r.cfg.linger)
	r.liveAtEnd, _ = r.fleet.live()
	return nil
}

// fault injects one fault and measures its recovery.
func (r *runner) fault(ctx context.Context, name string, rng *rand.Rand) *window {
	w := &window{name: name, start: r.clock.now(), recovered: -1}
	r.windows = append(r.windows, w)
	r.logf("fault %s: injecting", name)
	pctx := ctx
	if name == "proxy" {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, r.cfg.proxyFor)
		defer cancel()
	}
	w.detail, w.proxy, w.err = r.inject(pctx, name, rng)
	if ctx.Err() != nil && w.err == nil {
		w.err = ctx.Err()
	}
	w.end = r.clock.now()
	w.through = r.ledger.acceptedSoFar()
	if w.err != nil {
		return w
	}
	if at, ok := r.monitor.waitCaughtUp(ctx, w.through, r.cfg.settleMax); ok {
		w.recovered = at
	}
	r.logf("fault %s: %s; %s", name, w.detail, r.describeRecovery(w))
	return w
}

func (r *runner) describeRecovery(w *window) string {
	if w.recovered < 0 {
		live, _ := r.fleet.live()
		return fmt.Sprintf("NOT caught up within %s (%d of %d clients live)", r.cfg.settleMax, live, len(r.fleet.clients))
	}
	return fmt.Sprintf("every client live and caught up %.2fs after the start (%.2fs after the end)",
		time.Duration(w.recovered-w.start).Seconds(), time.Duration(w.recovered-w.end).Seconds())
}

// pids names the run's processes for the monitor's CPU figures.
func (r *runner) pids() map[string]int {
	return map[string]int{
		"redis": int(r.redis.pid.Load()), "A": int(r.instances[0].pid.Load()),
		"B": int(r.instances[1].pid.Load()), "C": int(r.instances[2].pid.Load()), "chaos": os.Getpid(),
	}
}

// awaitResolved waits until every send was accepted or refused for good,
// or -resolve-max passes.
func (r *runner) awaitResolved(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.resolveMax)
	last := time.Now()
	for r.sender.pending() > 0 && time.Now().Before(deadline) {
		if time.Since(last) > 10*time.Second {
			r.logf("still %d unresolved sends", r.sender.pending())
			last = time.Now()
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
}

func (r *runner) count(transport string) int {
	n := 0
	for _, c := range r.layout.clients {
		if c.transport == transport {
			n++
		}
	}
	return n
}

// setup makes the work directory, builds the service unless -bin names
// it, and starts Redis, the three instances and the proxy.
func (r *runner) setup(ctx context.Context) error {
	limit, err := loopback.RaiseFDLimit()
	if err != nil {
		return err
	}
	r.fdLimit = limit
	if need := fdNeed(r.cfg.clients); uint64(need) > limit {
		return fmt.Errorf("%d clients need about %d open files here (one per client, two more per client through the proxy); the limit is %d: use at most %d clients",
			r.cfg.clients, need, limit, maxClientsFor(limit))
	}
	if r.work == "" {
		if r.work, err = os.MkdirTemp("", "chaos-"+r.runID+"-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(r.work, 0o755); err != nil {
		return err
	}
	bin := r.cfg.bin
	if bin == "" {
		if bin, err = build(ctx, r.work); err != nil {
			return err
		}
	}
	port, err := loopback.StablePort()
	if err != nil {
		return err
	}
	r.redis = newRedis(r.work, port, r.cfg.appendfsync)
	if err := r.redis.up(ctx); err != nil {
		return err
	}
	env := []string{
		"REDIS_URL=" + r.redis.url(),
		"HEARTBEAT_INTERVAL=" + r.cfg.heartbeat.String(),
		"SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
	}
	env = append(env, r.cfg.env...)
	for i := range r.instances {
		port, err := loopback.StablePort()
		if err != nil {
			return err
		}
		r.instances[i] = newInstance(i, bin, r.work, port, env)
		if err := r.instances[i].up(ctx); err != nil {
			return err
		}
	}
	if r.proxy, err = newProxy(strings.TrimPrefix(r.instances[proxied].base(), "http://")); err != nil {
		return err
	}
	r.logf("redis-server on :%d (appendonly, appendfsync %s), instances A :%d, B :%d, C :%d (behind the proxy); work directory %s",
		r.redis.port, r.cfg.appendfsync, r.instances[0].port, r.instances[1].port, r.instances[2].port, r.work)
	return nil
}

// teardown stops what setup started: the proxy, the instances (SIGTERM),
// then Redis.
func (r *runner) teardown() {
	if r.proxy != nil {
		r.proxy.close()
	}
	for _, in := range r.instances {
		if in != nil {
			in.term(shutdownTimeout + 5*time.Second)
		}
	}
	if r.redis != nil && r.redis.running() {
		if err := r.redis.shutdown(); err != nil {
			r.redis.kill()
		}
	}
}

// build compiles the service (the module this program belongs to) into
// dir.
func build(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("find the module to build (run from inside it, or pass -bin): %v", err)
	}
	bin := filepath.Join(dir, "notification-service")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// maxClientsFor is the largest client count fdNeed fits in limit.
func maxClientsFor(limit uint64) int {
	n := 0
	for uint64(fdNeed(n+100)) <= limit {
		n += 100
	}
	return n
}
