package main

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"notification-service/scripts/internal/proc"
)

// result counts everything once the run's goroutines have ended.
func (r *runner) result(runErr error) *result {
	res := &result{
		Time: r.clock.start.UTC().Format(time.RFC3339), Run: r.runID, Label: r.cfg.label, Note: r.cfg.note,
		Command: os.Args, Machine: thisMachine(), WorkDir: r.work,
		DurationSec: round(time.Since(r.clock.start).Seconds(), 2),
	}
	res.Machine.LoadStart, res.Machine.LoadEnd = r.loadStart, proc.LoadAverage()
	res.Machine.CPUSec = round(ownCPU().Seconds(), 1)
	res.Machine.OpenFilesLimit = r.fdLimit
	if runErr != nil {
		res.Error = runErr.Error()
		res.Failures = append(res.Failures, "the run did not complete: "+runErr.Error())
	}
	res.Config = resultConfig{
		Clients: r.cfg.clients, Users: r.cfg.users, Channels: r.cfg.channels, PerSource: r.cfg.perSource,
		Sources: sourcesFor(r.cfg.clients, r.cfg.perSource), Rate: r.cfg.rate, Faults: r.cfg.faults,
		Appendfsync: r.cfg.appendfsync, Heartbeat: r.cfg.heartbeat.String(), IdleTimeout: r.cfg.idleTimeout.String(),
		Backoff: fmt.Sprintf("full jitter, %s doubling to %s", r.cfg.backoffBase, r.cfg.backoffMax),
		Seed:    r.cfg.seed, Short: r.cfg.short,
	}
	if in := r.instances[0]; in != nil {
		res.Config.Env = slices.DeleteFunc(slices.Clone(in.env), func(v string) bool { return strings.HasPrefix(v, "PORT=") })
	}
	if r.layout == nil {
		return res.judge()
	}
	res.Config.SSE, res.Config.WS = r.count("sse"), r.count("ws")
	if r.monitor != nil {
		r.monitor.mu.Lock()
		res.Timeline, res.Marks = r.monitor.ticks, r.monitor.marks
		r.monitor.mu.Unlock()
		for _, t := range res.Timeline {
			res.Machine.Load1Max = max(res.Machine.Load1Max, t.Load1)
			res.Machine.OpenFilesMax = max(res.Machine.OpenFilesMax, t.OpenFiles)
		}
		res.Machine.CPU = meanCPU(res.Timeline, 0, 1<<62)
	}
	var sends []*send
	if r.sender != nil {
		sends = r.sender.all()
	}
	res.Sends = r.sendFigures(sends)
	windows := r.windowBounds()
	inside := make([][]time.Duration, len(r.windows))
	var outside []time.Duration
	res.Deliveries = r.deliveryFigures(sends, func(s *send, at int64, d time.Duration) {
		for i, w := range windows {
			if s.firstAt <= w[1] && at >= w[0] {
				inside[i] = append(inside[i], d)
				return
			}
		}
		outside = append(outside, d)
	})
	var allInside []time.Duration
	for _, s := range inside {
		allInside = append(allInside, s...)
	}
	res.LatencyMS = latencyFigures{Outside: groupOf(outside), Inside: groupOf(allInside)}

	res.Clients = clientFigures{Total: len(r.fleet.clients), LiveAtEnd: r.liveAtEnd, Events: map[string]int{},
		StreamEnds: r.fleet.endCounts(), ConnectFailures: r.fleet.failCounts()}
	res.Clients.DisconnectedAtEnd = res.Clients.Total - r.liveAtEnd
	for k, v := range r.ev.count(0, 1<<62) {
		if !strings.HasPrefix(k, "send_") {
			res.Clients.Events[k] = v
		}
	}
	for _, c := range r.fleet.clients {
		res.Clients.Resets += c.resets
	}
	for i, w := range r.windows {
		f := r.faultFigures(w, windows[i])
		f.LatencyMS = groupOf(inside[i])
		var delays []time.Duration
		for _, s := range sends {
			if s.accepted && s.firstAt >= windows[i][0] && s.firstAt <= windows[i][1] {
				delays = append(delays, time.Duration(s.acceptedAt-s.firstAt))
			}
		}
		f.AcceptDelayMS = groupOf(delays)
		f.SlotWaitMS, f.RequestMS = r.sender.timings(windows[i][0], windows[i][1])
		f.CPU = meanCPU(res.Timeline, r.clock.seconds(windows[i][0]), r.clock.seconds(windows[i][1]))
		res.Faults = append(res.Faults, f)
	}
	if r.final != nil {
		f := r.faultFigures(r.final, [2]int64{r.final.start, r.final.start})
		res.Final = &f
	}
	res.ServerLogs = r.serverLogs()
	return res.judge()
}

// windowBounds is each fault's window for latency: from its start until
// every client had caught up (or -settle-max after its end).
func (r *runner) windowBounds() [][2]int64 {
	out := make([][2]int64, len(r.windows))
	for i, w := range r.windows {
		to := w.recovered
		if to < 0 {
			to = w.end + int64(r.cfg.settleMax)
		}
		out[i] = [2]int64{w.start, to}
	}
	return out
}

func (r *runner) sendFigures(sends []*send) sendFigures {
	f := sendFigures{Logical: len(sends), ByKind: map[string]int{}, Outcomes: map[string]int{}}
	var delays []time.Duration
	for _, s := range sends {
		f.ByKind[s.kind]++
		f.Attempts += s.attempts
		if s.inProgress > 0 {
			f.MetInProgress++
		}
		switch {
		case s.accepted:
			f.Accepted++
			if s.replayed {
				f.Replayed++
			}
			delays = append(delays, time.Duration(s.acceptedAt-s.firstAt))
		default:
			f.Abandoned++
			if len(f.AbandonedSamples) < 5 {
				f.AbandonedSamples = append(f.AbandonedSamples, fmt.Sprintf("send %d (%s, first attempt at %.1fs, %d attempts): %s",
					s.n, s.kind, r.clock.seconds(s.firstAt), s.attempts, s.abandoned))
			}
		}
	}
	f.AcceptDelayMS = groupOf(delays).Summary
	slow := slices.Clone(sends)
	slow = slices.DeleteFunc(slow, func(s *send) bool { return !s.accepted })
	slices.SortFunc(slow, func(a, b *send) int { return cmp.Compare(b.acceptedAt-b.firstAt, a.acceptedAt-a.firstAt) })
	for _, s := range slow[:min(5, len(slow))] {
		f.Slowest = append(f.Slowest, fmt.Sprintf("send %d (%s): first tried at %.2fs, accepted %.2fs later after %d attempts, %d of them answered 409 idempotency_in_progress%s",
			s.n, s.kind, r.clock.seconds(s.firstAt), time.Duration(s.acceptedAt-s.firstAt).Seconds(), s.attempts, s.inProgress, replayedText(s.replayed)))
	}
	for k, v := range r.ev.count(0, 1<<62) {
		if strings.HasPrefix(k, "send_") {
			f.Outcomes[k] = v
		}
	}
	f.Problems = r.sender.problems
	f.SlotWaitMS, f.RequestMS = r.sender.timings(0, 1<<62)
	return f
}

// deliveryFigures compares what each client received with what it had to.
// observe gets each expected delivery's send, receipt time and latency.
func (r *runner) deliveryFigures(sends []*send, observe func(s *send, at int64, d time.Duration)) deliveryFigs {
	var f deliveryFigs
	n := len(r.fleet.clients)
	expected, delivered, lost, dups, streams := make([]int, 0, n), make([]int, 0, n), make([]int, 0, n), make([]int, 0, n), make([]int, 0, n)
	other := func(format string, args ...any) {
		if len(f.OtherSamples) < 10 {
			f.OtherSamples = append(f.OtherSamples, fmt.Sprintf(format, args...))
		}
	}
	for _, c := range r.fleet.clients {
		c.mu.Lock()
		var cl, cd int
		for _, e := range c.expected {
			if !c.got.has(int(e.n)) {
				cl++
				if len(f.LostSamples) < 10 {
					s := sends[e.n]
					f.LostSamples = append(f.LostSamples, fmt.Sprintf("client %d (%s, %s, home %s) never got send %d (%s, accepted at %.2fs)",
						c.index, c.spec.transport, r.layout.userName(c.spec.user), instanceNames[c.spec.home], e.n, s.kind, r.clock.seconds(s.acceptedAt)))
				}
			}
		}
		for _, rc := range c.receipts {
			if int(rc.n) >= len(sends) {
				f.Phantom++
				other("client %d got send %d, never made", c.index, rc.n)
				continue
			}
			s := sends[rc.n]
			switch {
			case !s.accepted:
				f.Phantom++
				other("client %d got send %d (%s) at %.2fs, never accepted (%s)", c.index, rc.n, s.kind, r.clock.seconds(rc.at), s.abandoned)
			case !isRecipient(s, c.index):
				f.Misrouted++
				other("client %d (%s, channels %v) got send %d (%s), not meant for it", c.index, r.layout.userName(c.spec.user), c.spec.channels, rc.n, s.kind)
			default:
				cd++
				ref := s.acceptedAttemptAt
				if rc.at < ref {
					ref = s.firstAt // an earlier attempt went out; its answer was lost
				}
				observe(s, rc.at, time.Duration(rc.at-ref))
			}
		}
		if c.outOfOrder > 0 {
			other("client %d (%s): %d notifications out of order", c.index, c.spec.transport, c.outOfOrder)
		}
		f.Expected += int64(len(c.expected))
		f.Delivered += int64(cd)
		f.Lost += int64(cl)
		f.Duplicated += int64(c.dup)
		f.OutOfOrder += int64(c.outOfOrder)
		f.Stray += int64(c.stray)
		f.EpochChanges += int64(c.epochChanges)
		if cl > 0 {
			f.ClientsWithLoss++
		}
		expected, delivered, lost = append(expected, len(c.expected)), append(delivered, cd), append(lost, cl)
		dups, streams = append(dups, c.dup), append(streams, c.sessions)
		c.mu.Unlock()
	}
	f.PerClient = perClientStats{Expected: spreadOf(expected), Delivered: spreadOf(delivered), Lost: spreadOf(lost),
		Duplicated: spreadOf(dups), Streams: spreadOf(streams)}
	return f
}

func (r *runner) faultFigures(w *window, bounds [2]int64) faultFigures {
	f := faultFigures{
		Name: w.name, Detail: w.detail, StartSec: r.clock.seconds(w.start), EndSec: r.clock.seconds(w.end),
		DurationSec: round(time.Duration(w.end-w.start).Seconds(), 2), AcceptedBeforeEnd: w.through, Proxy: w.proxy,
	}
	if w.recovered >= 0 {
		a, b := round(time.Duration(w.recovered-w.start).Seconds(), 2), round(time.Duration(w.recovered-w.end).Seconds(), 2)
		f.RecoveredSec, f.RecoveredAfterEndSec = &a, &b
	}
	to := max(bounds[1], w.end)
	if w.recovered >= 0 {
		to = w.recovered
	}
	f.Events = r.ev.count(w.start, to+1)
	samples := r.monitor.between(w.start, to)
	f.MinLive = len(r.fleet.clients)
	var down time.Duration
	for i, s := range samples {
		f.MinLive = min(f.MinLive, s.live)
		if s.live < len(r.fleet.clients) && i+1 < len(samples) {
			down += time.Duration(samples[i+1].at - s.at)
		}
	}
	if down > 0 {
		d := round(down.Seconds(), 2)
		f.DisconnectedSec = &d
	}
	return f
}

// judge lists every failure and sets OK.
func (res *result) judge() *result {
	d, c := res.Deliveries, res.Clients
	fail := func(ok bool, format string, args ...any) {
		if !ok {
			res.Failures = append(res.Failures, fmt.Sprintf(format, args...))
		}
	}
	fail(d.Lost == 0, "%d deliveries lost: accepted sends a client never received (%d clients)", d.Lost, d.ClientsWithLoss)
	fail(d.Duplicated == 0, "%d deliveries duplicated", d.Duplicated)
	fail(d.OutOfOrder == 0, "%d deliveries out of order (cursor sequence went backwards)", d.OutOfOrder)
	fail(d.Phantom == 0, "%d phantom deliveries: sends never accepted, delivered anyway", d.Phantom)
	fail(d.Misrouted == 0, "%d misrouted deliveries: accepted sends delivered to a client they were not for", d.Misrouted)
	fail(d.Stray == 0, "%d notifications with this run's title and a nonsense number", d.Stray)
	fail(c.DisconnectedAtEnd == 0, "%d of %d clients left disconnected at the end", c.DisconnectedAtEnd, c.Total)
	fail(c.Resets == 0, "%d reset events: no client is ever away longer than the history holds here, so none is expected", c.Resets)
	fail(d.EpochChanges == 0, "%d cursor epoch changes: Redis lost its data", d.EpochChanges)
	fail(res.Sends.Abandoned == 0, "%d sends never accepted (see sends.abandoned_samples)", res.Sends.Abandoned)
	for _, f := range res.Faults {
		fail(f.RecoveredSec != nil, "fault %s: not every client was live and caught up within -settle-max after it", f.Name)
	}
	if res.Final != nil {
		fail(res.Final.RecoveredSec != nil, "at the end: not every client was live and caught up within -settle-max")
	}
	res.OK = len(res.Failures) == 0
	if res.Failures == nil {
		res.Failures = []string{}
	}
	return res
}

// ownCPU is this program's user plus system CPU time: it shares the two
// cores with Redis and the instances.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func isRecipient(s *send, client int32) bool {
	_, ok := slices.BinarySearch(s.recipients, client)
	return ok
}

// meanCPU averages the timeline's CPU shares over ticks in [from, to]
// seconds.
func meanCPU(ticks []tick, from, to float64) map[string]cpuShare {
	sum, n := map[string]cpuShare{}, map[string]int{}
	for _, t := range ticks {
		if t.T < from || t.T > to {
			continue
		}
		for name, c := range t.CPU {
			s := sum[name]
			s.Run, s.Wait = s.Run+c.Run, s.Wait+c.Wait
			sum[name], n[name] = s, n[name]+1
		}
	}
	for name, s := range sum {
		sum[name] = cpuShare{Run: round(s.Run/float64(n[name]), 0), Wait: round(s.Wait/float64(n[name]), 0)}
	}
	return sum
}

func replayedText(replayed bool) string {
	if replayed {
		return "; the 201 was a replay (an earlier attempt had published)"
	}
	return "; the 201 was a fresh publish"
}
