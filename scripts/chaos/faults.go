package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// window is one fault: when it was injected (start), when it was over
// (end: the instance or Redis back, the proxy calm again), and when every
// client was live and held every send accepted before end (recovered).
type window struct {
	name   string
	detail string
	start  int64
	end    int64
	// through is how many sends had been accepted at end.
	through   int32
	recovered int64 // -1: not within -settle-max
	proxy     *proxyStats
	err       error
}

// inject runs fault name and returns what it did. It returns once the
// fault is over: the window's end.
func (r *runner) inject(ctx context.Context, name string, rng *rand.Rand) (string, *proxyStats, error) {
	switch name {
	case "kill":
		return r.killInstance(ctx)
	case "redis":
		return r.restartRedis(ctx)
	case "proxy":
		r.monitor.mark("proxy starts cutting and stalling connections to instance C")
		st := r.proxy.havoc(ctx, r.cfg.proxyRate, r.cfg.stallShare, r.cfg.maxStall, rng)
		r.monitor.mark("proxy calm again")
		return fmt.Sprintf("for %s, about %.0f faults/s on the connections to C: %d FIN cuts, %d RST cuts, %d stalls (%.0fs in all)",
			r.cfg.proxyFor, r.cfg.proxyRate, st.Cuts, st.Resets, st.Stalls, st.StalledFor), &st, nil
	case "rolling":
		return r.rollingRestart(ctx)
	}
	return "", nil, fmt.Errorf("unknown fault %q", name)
}

// killInstance SIGKILLs the instance holding the most clients (a third of
// them at the first fault), keeps it down -kill-down, and restarts it.
func (r *runner) killInstance(ctx context.Context) (string, *proxyStats, error) {
	_, per := r.fleet.live()
	victim := 0
	for i := range per {
		if per[i] > per[victim] {
			victim = i
		}
	}
	in := r.instances[victim]
	r.monitor.mark("SIGKILL " + in.name)
	in.kill()
	if err := sleep(ctx, r.cfg.killDown); err != nil {
		return "", nil, err
	}
	r.monitor.mark("restart " + in.name)
	began := time.Now()
	if err := in.up(ctx); err != nil {
		return "", nil, err
	}
	r.monitor.mark(in.name + " healthy")
	return fmt.Sprintf("SIGKILL of %s holding %d of %d live clients (%v per instance); down %s; healthy %.2fs after its restart",
		in.name, per[victim], per[0]+per[1]+per[2], per, r.cfg.killDown, time.Since(began).Seconds()), nil, nil
}

// restartRedis stops Redis gracefully (SHUTDOWN: the append-only file is
// fsynced), keeps it down -redis-down, and starts it again on the same
// port and directory.
func (r *runner) restartRedis(ctx context.Context) (string, *proxyStats, error) {
	r.monitor.mark("redis SHUTDOWN")
	began := time.Now()
	if err := r.redis.shutdown(); err != nil {
		return "", nil, err
	}
	stopped := time.Since(began)
	if err := sleep(ctx, r.cfg.redisDown); err != nil {
		return "", nil, err
	}
	r.monitor.mark("redis start")
	began = time.Now()
	if err := r.redis.up(ctx); err != nil {
		return "", nil, err
	}
	r.monitor.mark("redis answers PING")
	return fmt.Sprintf("SHUTDOWN took %.2fs (appendfsync %s); down %s; answering %.2fs after its start",
		stopped.Seconds(), r.cfg.appendfsync, r.cfg.redisDown, time.Since(began).Seconds()), nil, nil
}

// rollingRestart restarts the three instances one after another with
// SIGTERM (their graceful shutdown), each healthy again before the next.
func (r *runner) rollingRestart(ctx context.Context) (string, *proxyStats, error) {
	detail := "SIGTERM, then restart, one after another:"
	for _, in := range r.instances {
		r.monitor.mark("SIGTERM " + in.name)
		took, killed := in.term(shutdownTimeout + 5*time.Second)
		if killed {
			detail += fmt.Sprintf(" %s did not exit within %s and was killed;", in.name, shutdownTimeout+5*time.Second)
		}
		began := time.Now()
		if err := in.up(ctx); err != nil {
			return "", nil, err
		}
		r.monitor.mark(in.name + " healthy")
		detail += fmt.Sprintf(" %s exited in %.2fs, healthy %.2fs after its start;", in.name, took.Seconds(), time.Since(began).Seconds())
	}
	return detail, nil, nil
}
