package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// redisServer is the run's redis-server, with the append-only file on, in
// the work directory; restart brings it back on the same port with the
// same data.
type redisServer struct {
	process
	port int
}

func newRedis(dir string, port int, appendfsync string) *redisServer {
	return &redisServer{port: port, process: process{
		name: "redis",
		argv: []string{"redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--appendonly", "yes", "--appendfsync", appendfsync, "--save", "", "--daemonize", "no",
			"--maxmemory-policy", "noeviction"},
		logPath: filepath.Join(dir, "redis.log"),
	}}
}

func (r *redisServer) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) }

// up starts redis-server and waits until it answers PING (which it does
// only once the append-only file is loaded).
func (r *redisServer) up(ctx context.Context) error {
	if err := r.start(); err != nil {
		return err
	}
	return r.waitReady(ctx, 30*time.Second, r.ping)
}

// shutdown is a graceful stop: SHUTDOWN, which fsyncs the append-only file
// first, then the wait for the exit.
func (r *redisServer) shutdown() error {
	if _, err := r.command("SHUTDOWN"); err != nil && !strings.Contains(err.Error(), "EOF") {
		return fmt.Errorf("redis SHUTDOWN: %w", err)
	}
	return r.waitExit(30 * time.Second)
}

func (r *redisServer) ping(ctx context.Context) error {
	reply, err := r.command("PING")
	if err != nil {
		return err
	}
	if reply != "+PONG" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}

// command sends one inline command and reads one reply line: all this
// program asks of Redis directly.
func (r *redisServer) command(cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
