package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"notification-service/scripts/internal/loopback"
	"notification-service/scripts/internal/proc"
)

// errServerStart marks a spawned server that never became healthy: the run
// exits with its own code so scripts/bench can tell "the server refused
// this configuration" from "the run failed".
var errServerStart = errors.New("server did not start")

// server is the process under test, when the run knows it (-spawn or
// -pid); its memory and CPU come from /proc.
type server struct {
	pid    int
	cmd    *exec.Cmd // nil unless spawned
	exited chan struct{}
	log    *os.File
}

// spawnServer starts binary with env added to this process's environment
// and PORT set to a free port, and waits until /health answers. It returns
// the server and its base URL.
func spawnServer(ctx context.Context, binary string, env []string, logPath string) (*server, string, error) {
	port, err := loopback.FreePort()
	if err != nil {
		return nil, "", err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", fmt.Errorf("server log: %w", err)
	}
	cmd := exec.Command(binary)
	cmd.Env = append(append(os.Environ(), env...), "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server must not outlive a load generator that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, "", fmt.Errorf("%w: %w", errServerStart, err)
	}
	s := &server{pid: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{}), log: logFile}
	go func() { _ = cmd.Wait(); close(s.exited) }() // ends when the process does; stop waits for it

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := s.waitHealthy(ctx, base, 15*time.Second); err != nil {
		s.stop(5 * time.Second)
		return nil, "", fmt.Errorf("%w: %w; its log (%s) ends with:\n%s", errServerStart, err, logPath, tail(logPath, 1500))
	}
	return s, base, nil
}

// attachServer watches a server started by someone else.
func attachServer(pid int) (*server, error) {
	s := &server{pid: pid}
	if _, err := s.rssKiB(); err != nil {
		return nil, fmt.Errorf("-pid %d: %w", pid, err)
	}
	return s, nil
}

func (s *server) waitHealthy(ctx context.Context, base string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{}, Timeout: time.Second}
	defer client.CloseIdleConnections()
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("it exited (%v)", s.cmd.ProcessState)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no healthy /health within %s", within)
		case <-s.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends a spawned server with SIGTERM (its graceful shutdown), and
// kills it when it takes longer than grace. A watched one is left alone.
func (s *server) stop(grace time.Duration) {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.log.Close()
}

// rssKiB is the server's resident set (VmRSS) in KiB.
func (s *server) rssKiB() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.pid)
}

// minRSS is the smallest of samples readings spaced by every: the Go
// runtime returns memory to the system in the background, and the minimum
// is the nearest an outside observer gets to the live set without forcing
// a GC.
func (s *server) minRSS(ctx context.Context, samples int, every time.Duration) (int64, error) {
	best := int64(-1)
	for i := range samples {
		if i > 0 {
			select {
			case <-ctx.Done():
				return best, ctx.Err()
			case <-time.After(every):
			}
		}
		v, err := s.rssKiB()
		if err != nil {
			return 0, err
		}
		if best < 0 || v < best {
			best = v
		}
	}
	return best, nil
}

// cpuTicks is the server's user plus system CPU time, in proc.ClockTicks.
func (s *server) cpuTicks() (int64, error) { return proc.CPUTicks(s.pid) }

// selfCPU is the load generator's own user plus system CPU time: it shares
// the machine with the server, and a run where it took most of the cores
// measured the generator, not the server.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tail is the last n bytes of a file, for an error message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b[max(len(b)-n, 0):])
}
