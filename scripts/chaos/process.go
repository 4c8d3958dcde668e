package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// process is a child this program started (redis-server or an instance of
// the service), restartable on the same port: each start appends to the
// same log. It never outlives this program (Pdeathsig).
type process struct {
	name    string
	argv    []string
	env     []string
	logPath string

	cmd    *exec.Cmd
	exited chan struct{}
	starts int
	// pid is the running process's, 0 when none: the monitor reads it
	// while faults restart the process.
	pid atomic.Int64
}

// start runs the process; it does not wait for it to be ready.
func (p *process) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log: %w", p.name, err)
	}
	defer logFile.Close() // the child has its own copy
	fmt.Fprintf(logFile, "---- chaos: start %d of %s at %s\n", p.starts+1, p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	p.cmd, p.exited, p.starts = cmd, make(chan struct{}), p.starts+1
	p.pid.Store(int64(cmd.Process.Pid))
	exited := p.exited
	// Ends when the process does; every stop waits for exited.
	go func() {
		_ = cmd.Wait()
		p.pid.Store(0)
		close(exited)
	}()
	return nil
}

func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *process) kill() {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// term sends SIGTERM and waits for the exit, killing after grace. It says
// how long the exit took, and whether it had to kill.
func (p *process) term(grace time.Duration) (time.Duration, bool) {
	if !p.running() {
		return 0, false
	}
	began := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return time.Since(began), false
	case <-time.After(grace):
		p.kill()
		return time.Since(began), true
	}
}

// waitExit waits up to within for the process to end by itself.
func (p *process) waitExit(within time.Duration) error {
	select {
	case <-p.exited:
		return nil
	case <-time.After(within):
		return fmt.Errorf("%s did not exit within %s", p.name, within)
	}
}

// waitReady polls ready every 50 ms until it succeeds, the process exits
// or within passes.
func (p *process) waitReady(ctx context.Context, within time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v); its log %s ends with:\n%s", p.name, p.cmd.ProcessState, p.logPath, tail(p.logPath, 1500))
		default:
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("%s not ready within %s: %w", p.name, within, errors.Join(last, err))
		}
	}
}

// tail is the last n bytes of a file, for an error message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b[max(len(b)-n, 0):]))
}
