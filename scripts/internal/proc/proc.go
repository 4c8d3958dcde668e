// Package proc reads what the load tools report about processes from
// Linux's /proc: CPU time and the load average. It does not start or
// signal processes.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture in use (what `getconf CLK_TCK` prints),
// and not available from Go without cgo.
const ClockTicks = 100

// CPUTicks is process pid's user plus system CPU time, in ClockTicks.
func CPUTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return ParseCPUTicks(b)
}

// ParseCPUTicks reads utime and stime (fields 14 and 15) from a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces, so fields are counted from the last ')'.
func ParseCPUTicks(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state), so field k is fields[k-3].
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(fields[14-3], 10, 64)
	stime, err2 := strconv.ParseInt(fields[15-3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return utime + stime, nil
}

// SchedTimes is how long all of process pid's threads have run on a CPU
// and how long they waited, runnable, for one (/proc/<pid>/task/*/schedstat,
// in nanoseconds). On a shared machine the wait is the share of the
// process's slowness that is other processes' doing.
func SchedTimes(pid int) (run, wait int64, err error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		r, err1 := strconv.ParseInt(f[0], 10, 64)
		w, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil {
			run, wait = run+r, wait+w
		}
	}
	return run, wait, nil
}

// LoadAverage is /proc/loadavg's three figures (zeros if unreadable).
func LoadAverage() [3]float64 {
	var out [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	fields := strings.Fields(string(b))
	for i := range min(3, len(fields)) {
		out[i], _ = strconv.ParseFloat(fields[i], 64)
	}
	return out
}

// OpenFiles is how many file descriptors process pid holds (the entries of
// /proc/<pid>/fd), read in batches so a count in the tens of thousands
// does not build one big slice.
func OpenFiles(pid int) (int, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(1024)
		n += len(names)
		if errors.Is(err, io.EOF) {
			if pid == os.Getpid() {
				n-- // the descriptor reading the directory
			}
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
