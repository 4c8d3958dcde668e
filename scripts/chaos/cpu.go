package main

import (
	"time"

	"notification-service/scripts/internal/proc"
)

// cpuMeter turns CPU time read from /proc into each process's share of a
// core since the previous sample. A restarted process (a new pid) starts
// over. Only the monitor's goroutine uses it.
type cpuMeter struct {
	last map[string]cpuReading
}

type cpuReading struct {
	pid       int
	run, wait int64 // nanoseconds, from schedstat
	at        time.Time
}

// cpuShare is one process's use of the CPUs over a sample: Run is the
// percent of one core it ran, Wait the percent of one core's time its
// threads spent runnable but waiting for a CPU (other processes had them).
type cpuShare struct {
	Run  float64 `json:"run"`
	Wait float64 `json:"wait"`
}

// sample reads every process in pids (name → pid; 0: not running) and
// returns each one's share since the last sample.
func (m *cpuMeter) sample(pids map[string]int) map[string]cpuShare {
	if m.last == nil {
		m.last = map[string]cpuReading{}
	}
	out := map[string]cpuShare{}
	now := time.Now()
	for name, pid := range pids {
		if pid == 0 {
			delete(m.last, name)
			continue
		}
		run, wait, err := proc.SchedTimes(pid)
		if err != nil {
			delete(m.last, name)
			continue
		}
		// Threads that ended take their times with them (a process
		// shutting down): such a sample says nothing and is skipped.
		if prev, ok := m.last[name]; ok && prev.pid == pid && run >= prev.run && wait >= prev.wait {
			span := float64(now.Sub(prev.at))
			out[name] = cpuShare{Run: round(100*float64(run-prev.run)/span, 0), Wait: round(100*float64(wait-prev.wait)/span, 0)}
		}
		m.last[name] = cpuReading{pid: pid, run: run, wait: wait, at: now}
	}
	return out
}
