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
	pid   int
	ticks int64
	at    time.Time
}

// sample reads every process in pids (name → pid; 0: not running) and
// returns the percent of one core each used since the last sample.
func (m *cpuMeter) sample(pids map[string]int) map[string]float64 {
	if m.last == nil {
		m.last = map[string]cpuReading{}
	}
	out := map[string]float64{}
	now := time.Now()
	for name, pid := range pids {
		if pid == 0 {
			delete(m.last, name)
			continue
		}
		ticks, err := proc.CPUTicks(pid)
		if err != nil {
			delete(m.last, name)
			continue
		}
		if prev, ok := m.last[name]; ok && prev.pid == pid {
			secs := float64(ticks-prev.ticks) / proc.ClockTicks
			out[name] = round(100*secs/now.Sub(prev.at).Seconds(), 0)
		}
		m.last[name] = cpuReading{pid: pid, ticks: ticks, at: now}
	}
	return out
}
