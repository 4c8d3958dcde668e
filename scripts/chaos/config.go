package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// faultNames are the faults in the order a run injects them. The order
// matters on purpose: the two faults that can interrupt a send between its
// Idempotency-Key claim and its answer come first, so their retries (which
// wait out the claim's lease, IDEMPOTENCY_CLAIM_LEASE) are resolved while
// the later faults run.
var faultNames = []string{"kill", "redis", "proxy", "rolling"}

// config is every knob of a run. The defaults are the full-scale run;
// -short swaps in the preset below before the other flags apply.
type config struct {
	bin     string
	workDir string
	keep    bool
	env     []string

	clients    int
	wsShare    float64
	users      int
	channels   int
	maxHeld    int
	perSource  int
	openWithin time.Duration

	rate             float64
	broadcastShare   float64
	userChannelShare float64
	batchShare       float64
	inFlight         int
	sendTimeout      time.Duration

	faults      []string
	warmup      time.Duration
	quiet       time.Duration
	killDown    time.Duration
	redisDown   time.Duration
	appendfsync string
	proxyFor    time.Duration
	proxyRate   float64
	stallShare  float64
	maxStall    time.Duration
	settleMax   time.Duration
	resolveMax  time.Duration
	linger      time.Duration

	heartbeat   time.Duration
	idleTimeout time.Duration
	backoffBase time.Duration
	backoffMax  time.Duration

	seed     uint64
	timeout  time.Duration
	jsonPath string
	label    string
	note     string
	short    bool
}

// defaults is the full-scale run: 6,000 clients, 2,000 per instance. Its
// open files: one per client, and two per client going through the proxy
// (up to two thirds of them while an instance is down), about 14,000 of
// the 20,000 a process may hold here; see fdNeed.
func defaults() config {
	return config{
		clients: 6000, wsShare: 0.5, channels: 40, maxHeld: 3, perSource: 100, openWithin: 60 * time.Second,
		rate: 100, broadcastShare: 0.25, userChannelShare: 0.2, batchShare: 0.1, inFlight: 32, sendTimeout: 5 * time.Second,
		faults: faultNames, warmup: 10 * time.Second, quiet: 10 * time.Second,
		killDown: 5 * time.Second, redisDown: 3 * time.Second, appendfsync: "everysec",
		proxyFor: 30 * time.Second, proxyRate: 40, stallShare: 0.3, maxStall: 8 * time.Second,
		settleMax: 60 * time.Second, resolveMax: 90 * time.Second, linger: 2 * time.Second,
		heartbeat: 5 * time.Second, idleTimeout: 15 * time.Second,
		backoffBase: 250 * time.Millisecond, backoffMax: 5 * time.Second,
		seed: 1, timeout: 15 * time.Minute,
	}
}

// shortPreset is what CI runs: a few hundred clients, every fault once,
// well under two minutes on two cores when nothing goes wrong.
func shortPreset(c config) config {
	c.clients, c.channels = 300, 10
	c.rate = 40
	c.warmup, c.quiet = 3*time.Second, 3*time.Second
	c.killDown, c.redisDown = 2*time.Second, time.Second
	c.proxyFor, c.proxyRate, c.maxStall = 6*time.Second, 10, 4*time.Second
	c.settleMax, c.resolveMax, c.linger = 30*time.Second, 75*time.Second, time.Second
	c.timeout = 4 * time.Minute
	return c
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	// -short changes the defaults the other flags start from, so it is
	// looked for first.
	cfg := defaults()
	for _, a := range args {
		if a == "-short" || a == "--short" || a == "-short=true" || a == "--short=true" {
			cfg = shortPreset(cfg)
			cfg.short = true
		}
	}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.short, "short", cfg.short, "the CI preset: 300 clients, every fault once, under two minutes (set first; other flags override it)")
	fs.StringVar(&cfg.bin, "bin", "", "the service binary (default: go build the module this program sits in)")
	fs.StringVar(&cfg.workDir, "work", "", "directory for Redis's data and the logs (default: a new one in $TMPDIR)")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the work directory even when the run passes (it is always kept when it fails)")
	fs.Func("env", "KEY=VALUE added to every instance's environment (repeat), e.g. -env RATE_CONNECTS_PER_ADDR=0", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want KEY=VALUE")
		}
		cfg.env = append(cfg.env, v)
		return nil
	})

	fs.IntVar(&cfg.clients, "clients", cfg.clients, "clients (streams), spread evenly over the three instances")
	fs.Float64Var(&cfg.wsShare, "ws-share", cfg.wsShare, "share of clients on WebSocket; the rest use SSE")
	fs.IntVar(&cfg.users, "users", cfg.users, "distinct users (default: two thirds of -clients, so a third of users have two clients, like two tabs)")
	fs.IntVar(&cfg.channels, "channels", cfg.channels, "distinct channels")
	fs.IntVar(&cfg.maxHeld, "max-held", cfg.maxHeld, "each client holds 0 to this many channels")
	fs.IntVar(&cfg.perSource, "per-source", cfg.perSource, "clients per loopback source address (127.0.0.2, .3, ...): the server's connect limit is per address")
	fs.DurationVar(&cfg.openWithin, "open-within", cfg.openWithin, "every client must be live this soon after start")

	fs.Float64Var(&cfg.rate, "rate", cfg.rate, "logical sends per second, each with its own Idempotency-Key")
	fs.Float64Var(&cfg.broadcastShare, "broadcast-share", cfg.broadcastShare, "share of sends that are broadcasts (channels, no user)")
	fs.Float64Var(&cfg.userChannelShare, "user-channel-share", cfg.userChannelShare, "share of user sends that also name a channel (delivered only to the user's clients holding it)")
	fs.Float64Var(&cfg.batchShare, "batch-share", cfg.batchShare, "share of user sends addressed to several users (user_ids)")
	fs.IntVar(&cfg.inFlight, "in-flight", cfg.inFlight, "send requests in flight at most")
	fs.DurationVar(&cfg.sendTimeout, "send-timeout", cfg.sendTimeout, "bound on one send request; a timeout is retried")

	fs.Func("faults", "comma list of faults to inject, in this order: "+strings.Join(faultNames, ","), func(v string) error {
		cfg.faults = nil
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			if !slices.Contains(faultNames, f) {
				return fmt.Errorf("unknown fault %q (want %s)", f, strings.Join(faultNames, ","))
			}
			cfg.faults = append(cfg.faults, f)
		}
		return nil
	})
	fs.DurationVar(&cfg.warmup, "warmup", cfg.warmup, "sending before the first fault")
	fs.DurationVar(&cfg.quiet, "quiet", cfg.quiet, "sending between one fault's recovery and the next fault, and after the last")
	fs.DurationVar(&cfg.killDown, "kill-down", cfg.killDown, "how long the SIGKILLed instance stays down")
	fs.DurationVar(&cfg.redisDown, "redis-down", cfg.redisDown, "how long Redis stays down between SHUTDOWN and its restart")
	fs.StringVar(&cfg.appendfsync, "appendfsync", cfg.appendfsync, "Redis appendfsync: always, everysec or no")
	fs.DurationVar(&cfg.proxyFor, "proxy-for", cfg.proxyFor, "how long the proxy cuts and stalls connections")
	fs.Float64Var(&cfg.proxyRate, "proxy-rate", cfg.proxyRate, "proxy faults per second (each on one random connection)")
	fs.Float64Var(&cfg.stallShare, "stall-share", cfg.stallShare, "share of proxy faults that stall a connection instead of cutting it")
	fs.DurationVar(&cfg.maxStall, "max-stall", cfg.maxStall, "a stall lasts up to this long")
	fs.DurationVar(&cfg.settleMax, "settle-max", cfg.settleMax, "after a fault, wait at most this long for every client to be live and caught up")
	fs.DurationVar(&cfg.resolveMax, "resolve-max", cfg.resolveMax, "after the last send, wait at most this long for every send to be accepted (an interrupted send is accepted once its key's claim lease lapses, 5s by default)")
	fs.DurationVar(&cfg.linger, "linger", cfg.linger, "keep the clients open this long after everything arrived, to catch late duplicates")

	fs.DurationVar(&cfg.heartbeat, "heartbeat", cfg.heartbeat, "the instances' HEARTBEAT_INTERVAL")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", cfg.idleTimeout, "a client that hears nothing (not even a heartbeat) this long drops its connection and reconnects")
	fs.DurationVar(&cfg.backoffBase, "backoff-base", cfg.backoffBase, "client reconnect backoff: full jitter over base*2^attempt")
	fs.DurationVar(&cfg.backoffMax, "backoff-max", cfg.backoffMax, "client reconnect backoff cap")

	fs.Uint64Var(&cfg.seed, "seed", cfg.seed, "seed of the layout (users, channels, transports) and of the sends and faults")
	fs.DurationVar(&cfg.timeout, "timeout", cfg.timeout, "bound on the whole run")
	fs.StringVar(&cfg.jsonPath, "json", "", "write the result object to this file (default: $TMPDIR/chaos-<run>.json)")
	fs.StringVar(&cfg.label, "label", "", "a name for this run in the result")
	fs.StringVar(&cfg.note, "note", "", "free text kept with the result")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.users == 0 {
		cfg.users = max(1, cfg.clients*2/3)
	}
	return cfg, cfg.validate()
}

func (c config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	share := func(v float64) bool { return v >= 0 && v <= 1 }
	check(c.clients >= 3, "-clients must be at least 3 (one per instance)")
	check(c.users >= 1 && c.users <= c.clients, "-users must be between 1 and -clients")
	check(c.channels >= 1 && c.maxHeld >= 0 && c.maxHeld <= c.channels, "-channels must be at least 1 and -max-held at most -channels")
	check(c.perSource >= 1, "-per-source must be at least 1")
	check(sourcesFor(c.clients, c.perSource) <= maxSources, "%d clients at -per-source %d need %d source addresses; 127.0.0.2-254 are %d",
		c.clients, c.perSource, sourcesFor(c.clients, c.perSource), maxSources)
	check(share(c.wsShare) && share(c.broadcastShare) && share(c.userChannelShare) && share(c.batchShare) && share(c.stallShare),
		"the -*-share flags are fractions between 0 and 1")
	check(c.rate > 0 && c.inFlight >= 1, "-rate must be positive and -in-flight at least 1")
	check(slices.Contains([]string{"always", "everysec", "no"}, c.appendfsync), "-appendfsync %q: want always, everysec or no", c.appendfsync)
	check(c.proxyRate > 0 && c.maxStall > 0, "-proxy-rate and -max-stall must be positive")
	check(c.heartbeat > 0 && c.idleTimeout > c.heartbeat, "-idle-timeout must be longer than -heartbeat")
	check(c.backoffBase > 0 && c.backoffMax >= c.backoffBase, "-backoff-max must be at least -backoff-base, and both positive")
	for _, d := range []time.Duration{c.openWithin, c.sendTimeout, c.settleMax, c.resolveMax, c.timeout} {
		check(d > 0, "durations must be positive")
	}
	return errors.Join(errs...)
}

// maxSources is how many client source addresses exist: 127.0.0.2 to
// 127.0.0.254 (127.0.0.1 is the sender's and the proxy's own).
const maxSources = 253

func sourcesFor(clients, perSource int) int { return (clients + perSource - 1) / perSource }

// fdReserve is the descriptors kept for everything but the clients (send
// connections, the proxy's listener, logs, Redis connections, /proc reads)
// and for the storm's slack: at 6,000 clients the most this program held
// at a tick was about 125 above the clients' share (open_files_max).
const fdReserve = 1024

// fdNeed is how many open files this process may hold: one per client, and
// two more per client going through the proxy. Clients whose own instance
// is down move to the next one, so while one instance is down up to two
// thirds of them can be on the proxied one.
func fdNeed(clients int) int { return clients + 2*(2*clients+2)/3 + fdReserve }
