package main

import (
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"time"

	"notification-service/scripts/internal/latency"
)

// result is one run, written as one JSON object; every count is over the
// whole run unless its name says otherwise.
type result struct {
	Time        string         `json:"time"`
	Run         string         `json:"run"`
	Label       string         `json:"label,omitempty"`
	Note        string         `json:"note,omitempty"`
	OK          bool           `json:"ok"`
	Failures    []string       `json:"failures"`
	Error       string         `json:"error,omitempty"`
	Command     []string       `json:"command"`
	Config      resultConfig   `json:"config"`
	Machine     machineFigures `json:"machine"`
	DurationSec float64        `json:"duration_sec"`
	Sends       sendFigures    `json:"sends"`
	Deliveries  deliveryFigs   `json:"deliveries"`
	Clients     clientFigures  `json:"clients"`
	Faults      []faultFigures `json:"faults"`
	Final       *faultFigures  `json:"final_catch_up,omitempty"`
	LatencyMS   latencyFigures `json:"latency_ms"`
	ServerLogs  []logFigures   `json:"server_logs"`
	Timeline    []tick         `json:"timeline"`
	Marks       []mark         `json:"marks"`
	WorkDir     string         `json:"work_dir"`
}

type resultConfig struct {
	Clients     int      `json:"clients"`
	SSE         int      `json:"sse"`
	WS          int      `json:"ws"`
	Users       int      `json:"users"`
	Channels    int      `json:"channels"`
	PerSource   int      `json:"clients_per_source_address"`
	Sources     int      `json:"source_addresses"`
	Rate        float64  `json:"sends_per_sec"`
	Faults      []string `json:"faults"`
	Appendfsync string   `json:"appendfsync"`
	Heartbeat   string   `json:"heartbeat"`
	IdleTimeout string   `json:"client_idle_timeout"`
	Backoff     string   `json:"client_backoff"`
	Env         []string `json:"instance_env"`
	Seed        uint64   `json:"seed"`
	Short       bool     `json:"short"`
}

type machineFigures struct {
	NumCPU     int        `json:"num_cpu"`
	GOMAXPROCS int        `json:"gomaxprocs"`
	GoVersion  string     `json:"go_version"`
	LoadStart  [3]float64 `json:"load_start"`
	LoadEnd    [3]float64 `json:"load_end"`
	Load1Max   float64    `json:"load1_max"`
	// OpenFilesMax is the most descriptors this program held at a
	// timeline tick (once a second), against OpenFilesLimit.
	OpenFilesMax   int     `json:"open_files_max"`
	OpenFilesLimit uint64  `json:"open_files_limit"`
	CPUSec         float64 `json:"chaos_cpu_sec"` // this program: the clients, proxy and sender
	// CPU is each process's mean share over the whole timeline.
	CPU map[string]cpuShare `json:"cpu_pct"`
}

type sendFigures struct {
	Logical   int            `json:"logical"`
	Accepted  int            `json:"accepted"`
	Replayed  int            `json:"accepted_replayed"`
	Abandoned int            `json:"abandoned"`
	Attempts  int            `json:"attempts"`
	ByKind    map[string]int `json:"by_kind"`
	// Outcomes counts attempts by answer: send_201, send_409_in_progress,
	// send_503, send_timeout, ...
	Outcomes map[string]int `json:"outcomes"`
	// AcceptDelayMS is from a send's first attempt to its accepted answer.
	AcceptDelayMS latency.Summary `json:"accept_delay_ms"`
	// SlotWaitMS is how long attempts waited for one of the -in-flight
	// request slots; RequestMS how long they then took to be answered.
	SlotWaitMS latency.Summary `json:"slot_wait_ms"`
	RequestMS  latency.Summary `json:"request_ms"`
	// MetInProgress counts sends answered 409 idempotency_in_progress at
	// least once; Slowest describes the sends slowest to be accepted.
	MetInProgress    int      `json:"sends_met_409_in_progress"`
	Slowest          []string `json:"slowest_accepted,omitempty"`
	AbandonedSamples []string `json:"abandoned_samples,omitempty"`
	Problems         []string `json:"problems,omitempty"`
}

type deliveryFigs struct {
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	OutOfOrder int64 `json:"out_of_order"`
	// Phantom is deliveries of sends never accepted; Misrouted of
	// accepted sends the client should not have had; Stray of this run's
	// titles whose number made no sense.
	Phantom         int64          `json:"phantom"`
	Misrouted       int64          `json:"misrouted"`
	Stray           int64          `json:"stray"`
	EpochChanges    int64          `json:"epoch_changes"`
	ClientsWithLoss int            `json:"clients_with_loss"`
	PerClient       perClientStats `json:"per_client"`
	LostSamples     []string       `json:"lost_samples,omitempty"`
	OtherSamples    []string       `json:"other_samples,omitempty"`
}

type perClientStats struct {
	Expected   spread `json:"expected"`
	Delivered  spread `json:"delivered"`
	Lost       spread `json:"lost"`
	Duplicated spread `json:"duplicated"`
	Streams    spread `json:"streams_opened"`
}

// spread is a distribution of per-client counts.
type spread struct {
	Min int `json:"min"`
	P50 int `json:"p50"`
	P99 int `json:"p99"`
	Max int `json:"max"`
}

func spreadOf(v []int) spread {
	if len(v) == 0 {
		return spread{}
	}
	slices.Sort(v)
	at := func(p float64) int { return v[min(len(v)-1, int(p*float64(len(v))))] }
	return spread{Min: v[0], P50: at(0.5), P99: at(0.99), Max: v[len(v)-1]}
}

type clientFigures struct {
	Total             int `json:"total"`
	LiveAtEnd         int `json:"live_at_end"`
	DisconnectedAtEnd int `json:"disconnected_at_end"`
	Resets            int `json:"resets"`
	// Events counts connected, reconnected, dropped, silent,
	// connect_refused, connect_429, connect_503, connect_other, reset.
	Events map[string]int `json:"events"`
	// StreamEnds says why open streams ended, ConnectFailures why
	// connects failed.
	StreamEnds      map[string]int `json:"stream_ends"`
	ConnectFailures map[string]int `json:"connect_failures"`
}

type faultFigures struct {
	Name        string  `json:"name"`
	Detail      string  `json:"detail"`
	StartSec    float64 `json:"start_sec"`
	EndSec      float64 `json:"end_sec"`
	DurationSec float64 `json:"duration_sec"`
	// AcceptedBeforeEnd is how many sends were accepted when the fault
	// ended: caught up means holding every one of them meant for you.
	AcceptedBeforeEnd int32 `json:"accepted_before_end"`
	// RecoveredSec is from the fault's start until every client was live
	// and caught up; null when that did not happen within -settle-max.
	RecoveredSec         *float64 `json:"recovered_sec"`
	RecoveredAfterEndSec *float64 `json:"recovered_after_end_sec"`
	// MinLive is the fewest live clients seen (every 100 ms) in the
	// window; DisconnectedSec how long, in all, at least one client was
	// not live (null: never seen).
	MinLive         int            `json:"min_live"`
	DisconnectedSec *float64       `json:"disconnected_sec"`
	Events          map[string]int `json:"events"`
	Proxy           *proxyStats    `json:"proxy,omitempty"`
	LatencyMS       latencyGroup   `json:"latency_ms"`
	// AcceptDelayMS is, for sends first tried in the window, from that
	// first attempt to the accepted answer; SlotWaitMS and RequestMS time
	// the attempts made in it.
	AcceptDelayMS latencyGroup    `json:"accept_delay_ms"`
	SlotWaitMS    latency.Summary `json:"slot_wait_ms"`
	RequestMS     latency.Summary `json:"request_ms"`
	// CPU is each process's mean share over the window's timeline ticks
	// (percent of one core run, and waited for a CPU while runnable).
	CPU map[string]cpuShare `json:"cpu_pct"`
}

type latencyFigures struct {
	// Latency is from the start of the accepted attempt of a send (or its
	// first attempt, when an earlier attempt was delivered before the
	// accepted answer) to the client's read. Inside: deliveries whose
	// time from first attempt to read overlaps a fault window (from the
	// fault's start until every client had caught up); the others are
	// outside.
	Outside latencyGroup `json:"outside_faults"`
	Inside  latencyGroup `json:"inside_faults"`
}

type latencyGroup struct {
	Count int `json:"count"`
	latency.Summary
}

func groupOf(samples []time.Duration) latencyGroup {
	return latencyGroup{Count: len(samples), Summary: latency.Summarize(samples)}
}

// write puts r in path as indented JSON.
func (r *result) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func thisMachine() machineFigures {
	return machineFigures{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
}
