// Package redistest starts a real redis-server for tests: its own process on
// a free loopback port, in a temporary directory, with no persistence unless
// a test asks for it, stopped when the test ends. Tests never touch a Redis
// they did not start, and never skip because Redis is missing: scripts/test
// installs redis-server when it is not on PATH, so a missing binary fails.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options shape the server a test starts.
type Options struct {
	// Persistent turns on the append-only file with fsync on every write,
	// so a Restart keeps everything acknowledged before it.
	Persistent bool
	// Args are extra redis-server arguments, e.g. "--maxmemory", "10mb".
	Args []string
	// ValidOn, when set (e.g. "6.0.0"), records every command the server
	// runs and fails the test if a command, subcommand or option it used
	// came in a later Redis, by the server's own COMMAND DOCS (see
	// commands.go).
	ValidOn string
}

// Server is one running redis-server owned by a test.
type Server struct {
	t    testing.TB
	opts Options
	dir  string
	port int

	mu     sync.Mutex
	proc   *os.Process
	exited chan error // receives the process's exit once

	commands *commandLog // with Options.ValidOn
}

// Start runs a redis-server for t and stops it in t.Cleanup. It fails the
// test if redis-server is not installed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server is not on PATH (scripts/test installs it: apt-get install redis-server): %v", err)
	}
	s := &Server{t: t, opts: opts, dir: t.TempDir()}
	// A free port can be taken between choosing it and redis binding it;
	// try a few.
	for attempt := 0; ; attempt++ {
		s.port = freePort(t)
		err := s.launch(bin)
		if err == nil {
			break
		}
		if attempt == 4 {
			t.Fatalf("redistest: start redis-server: %v", err)
		}
	}
	t.Cleanup(s.Stop)
	if opts.ValidOn != "" {
		docs, asked, err := loadDocs(s.Addr())
		if err != nil {
			t.Fatalf("redistest: ValidOn: %v", err)
		}
		s.commands = &commandLog{limit: opts.ValidOn, docs: docs, skipDocs: asked, counts: make(map[string]int), bad: make(map[string]int)}
		if err := s.commands.attach(s.Addr()); err != nil {
			t.Fatalf("redistest: ValidOn: %v", err)
		}
		// Registered after Stop, so it runs before it, once the test's
		// own clean-ups (registered later still) have sent their last
		// commands.
		t.Cleanup(func() {
			s.mu.Lock()
			if s.proc != nil {
				s.commands.detach(s.Addr())
			}
			s.mu.Unlock()
			s.commands.report(t)
		})
	}
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the server's redis:// URL for database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr(), db) }

// Client returns a client for database 0, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Stop kills the server at once, as a crash would: nothing is saved beyond
// what the append-only file already holds.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	if s.commands != nil {
		s.commands.detach(s.Addr()) // what it ran before it goes
	}
	s.proc.Kill()
	<-s.exited
	s.proc = nil
}

// Restart starts the stopped server again on the same port and directory.
func (s *Server) Restart() {
	s.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	// The port was just freed; another process taking it in between would
	// be a rare flake, so retry briefly rather than pick a new port (the
	// clients under test know this one).
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.launch(bin)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: restart redis-server: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) launch(bin string) error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--enable-debug-command", "local",
	}
	if s.opts.Persistent {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.opts.ValidOn != "" {
		args = append(args, slowLogArgs()...)
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(bin, args...)
	// A test binary killed mid-run must not leave its Redis behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitReady(s.Addr(), exited); err != nil {
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%w (log: %s)", err, tail(filepath.Join(s.dir, "redis.log")))
	}
	s.mu.Lock()
	s.proc, s.exited = cmd.Process, exited
	s.mu.Unlock()
	if s.commands != nil && s.commands.monitor == nil {
		// Restarted: record what the new process runs.
		s.commands.skipDocs = false
		if err := s.commands.attach(s.Addr()); err != nil {
			s.commands.lose("after a restart: %v", err)
		}
	}
	return nil
}

// waitReady polls until the server answers PING with PONG (not LOADING).
func waitReady(addr string, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v", err)
		default:
		}
		if pingOK(addr) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s not ready after 10s", addr)
}

func pingOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	return strings.TrimSpace(string(b))
}

// Flush empties every database, for a test that reuses one server.
func (s *Server) Flush(ctx context.Context) error {
	return s.Client().FlushAll(ctx).Err()
}
