package main

import (
	"fmt"
	"io"
	"strings"
)

// printSummary writes the account of the run for people.
func (res *result) printSummary(w io.Writer) {
	verdict := "OK"
	if !res.OK {
		verdict = "FAILED"
	}
	c, d, s := res.Config, res.Deliveries, res.Sends
	fmt.Fprintf(w, "\nchaos %s: %s in %.1fs: %d clients (%d SSE, %d WebSocket; %d users, %d channels) on 3 instances, Redis appendfsync %s\n",
		res.Run, verdict, res.DurationSec, c.Clients, c.SSE, c.WS, c.Users, c.Channels, c.Appendfsync)
	m := res.Machine
	fmt.Fprintf(w, "  machine      %d CPUs; load average %.2f at the start, %.2f at the end, %.2f at most; this program used %.1fs of CPU and held at most %d open files (of %d; sampled each second)\n",
		m.NumCPU, m.LoadStart[0], m.LoadEnd[0], m.Load1Max, m.CPUSec, m.OpenFilesMax, m.OpenFilesLimit)
	fmt.Fprintf(w, "               mean %% of a core ran/waited for a CPU: %s\n", cpuText(m.CPU))
	fmt.Fprintf(w, "  sends        %d logical: %d accepted (%d replayed), %d never accepted; %d attempts: %s\n",
		s.Logical, s.Accepted, s.Replayed, s.Abandoned, s.Attempts, counts(s.Outcomes))
	fmt.Fprintf(w, "               first attempt to acceptance ms: p50 %.1f  p99 %.1f  max %.1f; one request ms: p50 %.1f p99 %.1f max %.1f, after waiting for a slot p99 %.1f\n",
		s.AcceptDelayMS.P50, s.AcceptDelayMS.P99, s.AcceptDelayMS.Max, s.RequestMS.P50, s.RequestMS.P99, s.RequestMS.Max, s.SlotWaitMS.P99)
	fmt.Fprintf(w, "  deliveries   %d of %d expected: lost %d, duplicated %d, out of order %d, phantom %d, misrouted %d\n",
		d.Delivered, d.Expected, d.Lost, d.Duplicated, d.OutOfOrder, d.Phantom, d.Misrouted)
	fmt.Fprintf(w, "               per client: expected p50 %d (min %d, max %d), streams opened p50 %d (max %d)\n",
		d.PerClient.Expected.P50, d.PerClient.Expected.Min, d.PerClient.Expected.Max, d.PerClient.Streams.P50, d.PerClient.Streams.Max)
	cl := res.Clients
	fmt.Fprintf(w, "  clients      %d of %d live at the end; resets %d; %s\n", cl.LiveAtEnd, cl.Total, cl.Resets, counts(cl.Events))
	fmt.Fprintf(w, "               streams ended by: %s\n", strings.Join(topEnds(cl.StreamEnds, 8), ", "))
	if len(cl.ConnectFailures) > 0 {
		fmt.Fprintf(w, "               connects failed by: %s\n", strings.Join(topEnds(cl.ConnectFailures, 8), ", "))
	}
	for _, f := range res.Faults {
		fmt.Fprintf(w, "  fault %-7s at %.1fs, %.1fs long: %s\n", f.Name, f.StartSec, f.DurationSec, f.Detail)
		fmt.Fprintf(w, "               %s; fewest live %d%s\n", recovery(f), f.MinLive, disconnected(f))
		fmt.Fprintf(w, "               in the window: %s\n", counts(f.Events))
		fmt.Fprintf(w, "               sends first tried in it: acceptance ms p50 %.1f p99 %.1f (%d sends), one request ms p50 %.1f p99 %.1f, slot wait p99 %.1f\n",
			f.AcceptDelayMS.P50, f.AcceptDelayMS.P99, f.AcceptDelayMS.Count, f.RequestMS.P50, f.RequestMS.P99, f.SlotWaitMS.P99)
		fmt.Fprintf(w, "               deliveries overlapping it: latency ms p50 %.1f p99 %.1f (%d)\n", f.LatencyMS.P50, f.LatencyMS.P99, f.LatencyMS.Count)
		fmt.Fprintf(w, "               %% of a core ran/waited for a CPU: %s\n", cpuText(f.CPU))
	}
	if res.Final != nil {
		fmt.Fprintf(w, "  at the end   %s\n", recovery(*res.Final))
	}
	l := res.LatencyMS
	fmt.Fprintf(w, "  latency ms   outside faults p50 %.1f p99 %.1f max %.1f (%d); inside p50 %.1f p99 %.1f max %.1f (%d)\n",
		l.Outside.P50, l.Outside.P99, l.Outside.Max, l.Outside.Count, l.Inside.P50, l.Inside.P99, l.Inside.Max, l.Inside.Count)
	for _, lf := range res.ServerLogs {
		if lf.Errors+lf.Warnings > 0 {
			fmt.Fprintf(w, "  log %s        %d errors, %d warnings (start-up warnings not counted): %s\n", lf.Instance, lf.Errors, lf.Warnings, counts(lf.Messages))
		}
	}
	for _, f := range res.Failures {
		fmt.Fprintf(w, "  FAILURE      %s\n", f)
	}
	for _, s := range append(d.LostSamples, d.OtherSamples...) {
		fmt.Fprintf(w, "  sample       %s\n", s)
	}
	if s.MetInProgress > 0 {
		fmt.Fprintf(w, "  409          %d sends were answered 409 idempotency_in_progress at least once; the slowest:\n", s.MetInProgress)
		for _, x := range s.Slowest {
			fmt.Fprintf(w, "               %s\n", x)
		}
	}
	for _, s := range append(s.AbandonedSamples, s.Problems...) {
		fmt.Fprintf(w, "  send         %s\n", s)
	}
}

func recovery(f faultFigures) string {
	if f.RecoveredSec == nil {
		return "NOT every client live and caught up within -settle-max"
	}
	return fmt.Sprintf("every client live and caught up %.2fs after the start (%.2fs after the end)", *f.RecoveredSec, *f.RecoveredAfterEndSec)
}

func disconnected(f faultFigures) string {
	if f.DisconnectedSec == nil {
		return ""
	}
	return fmt.Sprintf(", some client disconnected for %.2fs in all", *f.DisconnectedSec)
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(topEnds(m, len(m)), ", ")
}

func cpuText(m map[string]cpuShare) string {
	var parts []string
	for _, name := range []string{"A", "B", "C", "redis", "chaos"} {
		if c, ok := m[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f/%.0f", name, c.Run, c.Wait))
		}
	}
	return strings.Join(parts, ", ")
}
