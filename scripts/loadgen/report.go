package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"notification-service/scripts/internal/latency"
	"notification-service/scripts/internal/proc"
)

// result is one run, written as exactly one JSON line.
type result struct {
	Time      string  `json:"time"`
	Label     string  `json:"label,omitempty"`
	Note      string  `json:"note,omitempty"`
	Scenario  string  `json:"scenario"`
	Transport string  `json:"transport"`
	Conns     int     `json:"conns"`
	Messages  int     `json:"messages"` // per connection
	Rate      float64 `json:"rate"`     // requests per second asked for; 0: unpaced
	Sends     int     `json:"sends"`    // requests sent

	Deliveries       int64           `json:"deliveries"`
	Expected         int64           `json:"expected"`
	Lost             int64           `json:"lost"`
	Duplicated       int64           `json:"duplicated"`
	DeliveriesPerSec float64         `json:"deliveries_per_sec"`
	LatencyMS        latency.Summary `json:"latency_ms"`

	// Server figures; null when the run does not know the server's pid.
	RSSBeforeKiB   *int64   `json:"rss_before_kib"`
	RSSAfterKiB    *int64   `json:"rss_after_kib"`
	RSSPerConnKiB  *float64 `json:"rss_per_conn_kib"`
	ServerCPUSec   *float64 `json:"server_cpu_sec"`
	CPUSecPer100k  *float64 `json:"cpu_sec_per_100k"`
	LoadgenCPUSec  float64  `json:"loadgen_cpu_sec"` // this process, over the same window
	OpenSec        float64  `json:"open_sec"`        // opening every stream, ready included
	DurationSec    float64  `json:"duration_sec"`    // the whole run
	ConnFailures   int      `json:"conn_failures"`
	DroppedStreams int64    `json:"dropped_streams"`
	SendFailures   int      `json:"send_failures"`
	Errors         []string `json:"errors,omitempty"`
	OK             bool     `json:"ok"`

	// Open dashboards (-dashboards) and what they asked.
	Dashboards        int   `json:"dashboards,omitempty"`
	DashboardRequests int64 `json:"dashboard_requests,omitempty"`
	DashboardFailures int64 `json:"dashboard_failures,omitempty"`

	Machine machine `json:"machine"`
}

type machine struct {
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	GoVersion  string `json:"go_version"`
	CPUModel   string `json:"cpu_model,omitempty"`
	MemTotal   string `json:"mem_total,omitempty"`
}

func thisMachine() machine {
	return machine{
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		CPUModel:   procField("/proc/cpuinfo", "model name", ":"),
		MemTotal:   procField("/proc/meminfo", "MemTotal", ":"),
	}
}

// procField is the value of the first "key<sep> value" line of a /proc
// file, or "".
func procField(path, key, sep string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// fill puts the delivery counts and server figures into r.
func (r *result) fill(c deliveryCounts, cpuTicks int64, haveCPU bool) {
	r.Deliveries, r.Expected, r.Lost, r.Duplicated = c.delivered, c.expected, c.lost, c.duplicated
	if window := time.Duration(c.last - c.first); c.delivered > 0 && window > 0 {
		r.DeliveriesPerSec = round(float64(c.delivered)/window.Seconds(), 1)
	}
	r.LatencyMS = c.lat.summarize()
	if haveCPU {
		sec := float64(cpuTicks) / proc.ClockTicks
		r.ServerCPUSec = &sec
		if c.delivered > 0 {
			per := round(sec/float64(c.delivered)*100_000, 3)
			r.CPUSecPer100k = &per
		}
	}
}

func round(v float64, decimals int) float64 {
	p := 1.0
	for range decimals {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// resultMarker starts the JSON line on stdout when no -json file is given,
// so a script can pick it out of other output.
const resultMarker = "LOADGEN_RESULT "

// writeJSON appends r as one line to path, or prints it after the marker.
func (r *result) writeJSON(path string, stdout io.Writer) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if path == "" {
		_, err = fmt.Fprintf(stdout, "%s%s\n", resultMarker, line)
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printSummary writes the human-readable account of r.
func (r *result) printSummary(w io.Writer) {
	verdict := "OK"
	if !r.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "\n%s: %s over %s, %d connections (opened in %.1fs), %.1fs in all\n",
		verdict, r.Scenario, r.Transport, r.Conns, r.OpenSec, r.DurationSec)
	if r.Dashboards > 0 {
		fmt.Fprintf(w, "  dashboards   %d open: %d requests, %d failed\n", r.Dashboards, r.DashboardRequests, r.DashboardFailures)
	}
	if r.Expected > 0 || r.Sends > 0 {
		fmt.Fprintf(w, "  deliveries   %d of %d expected: %d lost, %d duplicated (%d requests, %d failed)\n",
			r.Deliveries, r.Expected, r.Lost, r.Duplicated, r.Sends, r.SendFailures)
		fmt.Fprintf(w, "  throughput   %.0f deliveries/s\n", r.DeliveriesPerSec)
		fmt.Fprintf(w, "  latency ms   p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n",
			r.LatencyMS.P50, r.LatencyMS.P95, r.LatencyMS.P99, r.LatencyMS.Max)
	}
	if r.RSSPerConnKiB != nil {
		fmt.Fprintf(w, "  server RSS   %d KiB before, %d KiB after opening: %.1f KiB per connection\n",
			*r.RSSBeforeKiB, *r.RSSAfterKiB, *r.RSSPerConnKiB)
	}
	if r.ServerCPUSec != nil {
		fmt.Fprintf(w, "  server CPU   %.2fs while sending", *r.ServerCPUSec)
		if r.CPUSecPer100k != nil {
			fmt.Fprintf(w, ": %.3fs per 100,000 deliveries", *r.CPUSecPer100k)
		}
		fmt.Fprintf(w, " (the load generator took %.2fs)\n", r.LoadgenCPUSec)
	}
	if r.ConnFailures > 0 || r.DroppedStreams > 0 {
		fmt.Fprintf(w, "  streams      %d failed to open, %d ended by the server\n", r.ConnFailures, r.DroppedStreams)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error        %s\n", e)
	}
}
