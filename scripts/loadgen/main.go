// Command loadgen is the notification service's load generator. It opens
// thousands of SSE, WebSocket and Pusher-protocol streams over loopback,
// drives one scenario through the REST API (idle, broadcast, per-user or
// scheduled notifications), checks that every stream received every message exactly
// once, and reports delivery latency and throughput with the server's
// memory per connection and CPU per delivery, read from /proc.
//
// It is a measuring tool, not part of the service: it runs on Linux (for
// /proc and the socket options it sets), over plain HTTP, on the same
// machine as the server. scripts/bench runs it for the table in
// docs/BENCHMARKS.md.
//
//	go run ./scripts/loadgen -spawn /tmp/notification-service -scenario broadcast -conns 2000 -messages 20
//	go run ./scripts/loadgen -url http://127.0.0.1:8080 -pid $(pgrep -n notification) -scenario idle -conns 1000
//	go run ./scripts/loadgen -spawn /tmp/notification-service -env PUSHER_APP_ID=lg -env PUSHER_APP_KEY=lg-key \
//	    -env PUSHER_APP_SECRET=lg-secret-123 -transport pusher -pusher-key lg-key -scenario broadcast
//
// One JSON line per run goes to the -json file (appended) or to stdout
// after "LOADGEN_RESULT "; a summary for people goes to stderr. It exits 1
// when anything was lost or duplicated, a stream failed or the run timed
// out, 2 on bad flags, and 3 when a -spawn server did not start.
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
	"slices"
	"strings"
	"syscall"
	"time"

	"notification-service/scripts/internal/loopback"
)

// fdReserve is the descriptors kept for everything but the streams: the
// REST connections, /proc reads, the server log.
const fdReserve = 64

type config struct {
	url       string
	sendURL   string
	scenario  string
	transport string
	// transports are the streams' transports, taken in turn (-transport).
	transports []string
	conns      int
	messages   int
	rate       float64
	senders    int
	lead       time.Duration

	settle  time.Duration
	hold    time.Duration
	drain   time.Duration
	timeout time.Duration

	dialConcurrency int
	perSource       int

	spawn     string
	env       []string
	serverLog string
	pid       int

	apiKey     string
	jwtSecret  string
	dashboards int

	pusherKey, pusherSecret, pusherUserPrefix string

	jsonPath string
	label    string
	note     string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080", "the server's base URL (ignored with -spawn)")
	fs.StringVar(&cfg.sendURL, "send-url", "", "send REST requests to this instance instead of -url: streams on one instance, sends on another measures cross-instance delivery in Redis mode")
	fs.StringVar(&cfg.scenario, "scenario", "idle", "idle, broadcast, users or scheduled")
	fs.StringVar(&cfg.transport, "transport", "sse", "sse, ws, pusher, mix (sse and ws alternating), or a list to alternate, e.g. sse,ws,pusher")
	fs.IntVar(&cfg.conns, "conns", 1000, "streams to open (capped by the open-file limit)")
	fs.IntVar(&cfg.messages, "messages", 10, "messages each stream must receive")
	fs.Float64Var(&cfg.rate, "rate", 0, "requests per second (broadcast: messages/s; users: deliveries/s); 0 sends as fast as -senders go")
	fs.IntVar(&cfg.senders, "senders", 4, "concurrent REST requests")
	fs.DurationVar(&cfg.lead, "lead", 5*time.Second, "scheduled: how far ahead the items are due")
	fs.DurationVar(&cfg.settle, "settle", 5*time.Second, "wait after opening before reading RSS and sending")
	fs.DurationVar(&cfg.hold, "hold", 0, "keep the streams open this much longer at the end (they must all survive)")
	fs.DurationVar(&cfg.drain, "drain", 30*time.Second, "wait at most this long after the last send (scheduled: after the due time) for deliveries")
	fs.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "bound on the whole run")
	fs.IntVar(&cfg.dialConcurrency, "dial-concurrency", 200, "streams being opened at once")
	fs.IntVar(&cfg.perSource, "per-source", 5000, "streams per loopback source address (127.0.0.1, .2, ...)")
	fs.StringVar(&cfg.spawn, "spawn", "", "start this server binary on a free port, and stop it (SIGTERM) at the end")
	fs.Func("env", "KEY=VALUE for the -spawn server (repeat)", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want KEY=VALUE")
		}
		cfg.env = append(cfg.env, v)
		return nil
	})
	fs.StringVar(&cfg.serverLog, "server-log", "", "where the -spawn server's output goes (default: a file in $TMPDIR)")
	fs.IntVar(&cfg.pid, "pid", 0, "the pid of a server started elsewhere, for its RSS and CPU")
	fs.StringVar(&cfg.apiKey, "api-key", "", "the server's API_KEY, sent as Authorization: Bearer on REST calls")
	fs.IntVar(&cfg.dashboards, "dashboards", 0, "keep this many dashboards open on the server for the whole run (web/dashboard.js's requests, at its rate)")
	fs.StringVar(&cfg.jwtSecret, "jwt-secret", "", "the server's JWT_SECRET: streams then carry a signed ?token= for their user")
	fs.StringVar(&cfg.pusherKey, "pusher-key", "", "the server's PUSHER_APP_KEY, for -transport pusher")
	fs.StringVar(&cfg.pusherSecret, "pusher-secret", "", "the server's PUSHER_APP_SECRET: Pusher streams of the users scenario sign their private channels with it")
	fs.StringVar(&cfg.pusherUserPrefix, "pusher-user-prefix", "App.Models.User.", "the server's LARAVEL_USER_CHANNEL_PREFIX: a user's private channel is private-<prefix><user>")
	fs.StringVar(&cfg.jsonPath, "json", "", "append the result line to this file (default: stdout after "+strings.TrimSpace(resultMarker)+")")
	fs.StringVar(&cfg.label, "label", "", "a name for this run in the results")
	fs.StringVar(&cfg.note, "note", "", "free text kept with the result (e.g. the server's revision)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(slices.Contains(scenarios, cfg.scenario), "-scenario %q: want one of %v", cfg.scenario, scenarios)
	var err error
	cfg.transports, err = transportList(cfg.transport)
	check(err == nil, "-transport: %v", err)
	usesPusher := slices.Contains(cfg.transports, "pusher")
	check(!usesPusher || cfg.pusherKey != "", "-transport %s needs the server's PUSHER_APP_KEY as -pusher-key", cfg.transport)
	check(!usesPusher || cfg.scenario != "users" || cfg.pusherSecret != "",
		"-scenario users over pusher needs the server's PUSHER_APP_SECRET as -pusher-secret (the streams subscribe to their user's private channel)")
	check(cfg.conns >= 1, "-conns must be at least 1")
	check(cfg.scenario == "idle" || cfg.messages >= 1, "-messages must be at least 1")
	check(cfg.rate >= 0, "-rate must not be negative")
	check(cfg.senders >= 1 && cfg.dialConcurrency >= 1 && cfg.perSource >= 1, "-senders, -dial-concurrency and -per-source must be at least 1")
	check(cfg.spawn == "" || cfg.pid == 0, "-spawn and -pid exclude each other")
	check(cfg.dashboards >= 0, "-dashboards must not be negative")
	check(cfg.lead > 0 && cfg.timeout > 0 && cfg.drain > 0, "-lead, -drain and -timeout must be positive")
	return cfg, errors.Join(errs...)
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, cfg, os.Stdout, os.Stderr))
}

// run measures once, reports, and returns the exit code.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "loadgen: "+format+"\n", args...) }
	started := time.Now()
	res := &result{
		Time: started.UTC().Format(time.RFC3339), Label: cfg.label, Note: cfg.note,
		Scenario: cfg.scenario, Transport: cfg.transport, Conns: cfg.conns, Messages: cfg.messages, Rate: cfg.rate,
		Machine: thisMachine(),
	}
	if cfg.scenario == "idle" {
		res.Messages = 0
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	err := measure(ctx, cfg, res, logf)
	if err != nil {
		res.Errors = append([]string{err.Error()}, res.Errors...)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		res.Errors = append(res.Errors, fmt.Sprintf("timed out after -timeout %s", cfg.timeout))
	}
	res.DurationSec = round(time.Since(started).Seconds(), 2)
	res.OK = len(res.Errors) == 0 && res.Lost == 0 && res.Duplicated == 0
	res.printSummary(stderr)
	if err := res.writeJSON(cfg.jsonPath, stdout); err != nil {
		logf("write the result: %v", err)
		return 1
	}
	switch {
	case errors.Is(err, errServerStart):
		return 3
	case !res.OK:
		return 1
	}
	return 0
}

// measure runs the scenario and fills res. An error ends the run early;
// problems found along the way go to res.Errors.
func measure(ctx context.Context, cfg config, res *result, logf func(string, ...any)) error {
	limit, err := loopback.RaiseFDLimit()
	if err != nil {
		return err
	}
	if most := int(limit) - fdReserve; cfg.conns > most {
		logf("warning: -conns %d is more than the open-file limit (%d) allows; opening %d", cfg.conns, limit, most)
		cfg.conns = most
		res.Conns = most
	}
	runID := newRunID()

	var srv *server
	base := cfg.url
	switch {
	case cfg.spawn != "":
		logPath := cfg.serverLog
		if logPath == "" {
			logPath = filepath.Join(os.TempDir(), "loadgen-server-"+runID+".log")
		}
		if srv, base, err = spawnServer(ctx, cfg.spawn, cfg.env, logPath); err != nil {
			return err
		}
		defer srv.stop(20 * time.Second)
		logf("spawned %s (pid %d) at %s; its log: %s", cfg.spawn, srv.pid, base, logPath)
	case cfg.pid > 0:
		if srv, err = attachServer(cfg.pid); err != nil {
			return err
		}
	}

	if cfg.dashboards > 0 {
		// Stopped before the server (defers run last first), so no poll
		// fails for the server going away.
		d := openDashboards(ctx, base, cfg.apiKey, cfg.dashboards)
		res.Dashboards = cfg.dashboards
		defer func() {
			d.stop()
			res.DashboardRequests, res.DashboardFailures = d.requests.Load(), d.failed.Load()
		}()
	}

	var token func(string) string
	if cfg.jwtSecret != "" {
		token = streamToken(cfg.jwtSecret)
	}
	tg, err := newTarget(base, cfg.perSource, token)
	if err != nil {
		return err
	}
	if n := tg.sources(cfg.conns); n > 254 {
		return fmt.Errorf("%d connections at -per-source %d need %d loopback addresses; 254 exist", cfg.conns, cfg.perSource, n)
	}
	p, err := newPlan(cfg, runID, cfg.conns)
	if err != nil {
		return err
	}
	tg.channels = p.channel
	tg.pusher = pusherTarget{key: cfg.pusherKey, secret: cfg.pusherSecret, userPrefix: cfg.pusherUserPrefix, channel: p.pusherChannel}
	rec := newReceiver(runID, time.Now())
	logf("run %s: %s, %d %s streams to %s from %d source address(es)", runID, cfg.scenario, cfg.conns, cfg.transport, base, tg.sources(cfg.conns))

	var rssBefore int64
	if srv != nil {
		if rssBefore, err = srv.minRSS(ctx, 3, 300*time.Millisecond); err != nil {
			return fmt.Errorf("server RSS: %w", err)
		}
		res.RSSBeforeKiB = &rssBefore
	}

	opening := time.Now()
	f := openFleet(ctx, tg, rec, cfg.conns, cfg.transports, p.messages, cfg.dialConcurrency, runID, logf)
	defer f.close() // a no-op once closed below; here for the early returns
	res.OpenSec = round(time.Since(opening).Seconds(), 2)
	if n, samples := f.openErrors(); n > 0 {
		res.ConnFailures = n
		return fmt.Errorf("%d of %d streams failed to open; first: %s", n, cfg.conns, strings.Join(samples, "; "))
	}
	logf("%d streams open in %.1fs; settling for %s", cfg.conns, res.OpenSec, cfg.settle)
	if err := sleep(ctx, cfg.settle); err != nil {
		return err
	}
	if srv != nil {
		after, err := srv.minRSS(ctx, 5, 500*time.Millisecond)
		if err != nil {
			return fmt.Errorf("server RSS: %w", err)
		}
		per := round(float64(after-rssBefore)/float64(cfg.conns), 2)
		res.RSSAfterKiB, res.RSSPerConnKiB = &after, &per
	}

	var out sendOutcome
	var cpuUsed int64
	haveCPU := false
	if p.batch.count > 0 {
		cpu0, err0 := cpuOf(srv)
		self0 := selfCPU()
		sendBase := base
		if cfg.sendURL != "" {
			sendBase = cfg.sendURL
		}
		out = p.drive(ctx, newSender(sendBase, cfg.apiKey, cfg.senders), rec, f, cfg.drain, logf)
		cpu1, err1 := cpuOf(srv)
		res.LoadgenCPUSec = round((selfCPU() - self0).Seconds(), 2)
		cpuUsed, haveCPU = cpu1-cpu0, srv != nil && err0 == nil && err1 == nil
		res.Sends, res.SendFailures = p.batch.count, out.failures
		if out.firstErr != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%d requests failed; first: %v", out.failures, out.firstErr))
		}
	}
	if cfg.hold > 0 {
		logf("holding the streams for %s", cfg.hold)
		if err := sleep(ctx, cfg.hold); err != nil {
			return err
		}
	}

	res.DroppedStreams = f.dropped.Load()
	f.close()
	res.Errors = append(res.Errors, f.droppedErrors()...)
	c := p.count(out, f.streams)
	res.fill(c, cpuUsed, haveCPU)
	if c.stray > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("%d deliveries carried a message number out of range", c.stray))
	}
	return nil
}

func cpuOf(srv *server) (int64, error) {
	if srv == nil {
		return 0, errors.New("no server pid")
	}
	return srv.cpuTicks()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newRunID names a run in titles, channel and user names, so runs against
// a shared server never count each other's messages.
func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}
