// Command fanout-floor measures the least a fan-out to N loopback TCP
// connections can take on this machine, with no notification service in
// the way: one process writes one 400-byte message to each of N
// connections (from GOMAXPROCS goroutines, one write(2) each, as the
// service's writers do), a child process reads them (a goroutine per
// connection, as scripts/loadgen does), and the time from the first write
// to the last read is reported per round, with the writer's CPU per write.
//
// It is the floor under the latency-40k row of docs/BENCHMARKS.md: a
// broadcast to N subscribers cannot reach the last of them sooner than
// this, whatever the server does before its writes.
//
//	go run ./scripts/fanout-floor -n 10000 -rounds 20
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const msgSize = 400

func main() {
	n := flag.Int("n", 10000, "connections")
	rounds := flag.Int("rounds", 20, "fan-outs to time, 250 ms apart")
	reader := flag.String("reader", "", "internal: run as the reading child, connecting to this address")
	flag.Parse()
	if *reader != "" {
		if err := read(*reader, *n); err != nil {
			fmt.Fprintln(os.Stderr, "fanout-floor reader:", err)
			os.Exit(1)
		}
		return
	}
	if err := write(*n, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "fanout-floor:", err)
		os.Exit(1)
	}
}

// write accepts n connections from a child reader and times rounds
// fan-outs to them.
func write(n, rounds int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	child := exec.Command(os.Args[0], "-reader", ln.Addr().String(), "-n", fmt.Sprint(n))
	child.Stderr = os.Stderr
	roundsDone, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	}()
	conns := make([]net.Conn, n)
	for i := range conns {
		if conns[i], err = ln.Accept(); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	msg := make([]byte, msgSize)
	for i := range msg {
		msg[i] = 'x'
	}

	var took []time.Duration
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for range rounds {
		time.Sleep(250 * time.Millisecond)
		start := time.Now()
		var next atomic.Int64
		var writers sync.WaitGroup
		var failed atomic.Pointer[error]
		for range runtime.GOMAXPROCS(0) {
			writers.Go(func() {
				for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
					if _, err := conns[i].Write(msg); err != nil {
						failed.Store(&err)
						return
					}
				}
			})
		}
		writers.Wait()
		if err := failed.Load(); err != nil {
			return *err
		}
		// The child writes one byte once all n have this round's message.
		if _, err := io.ReadFull(roundsDone, make([]byte, 1)); err != nil {
			return fmt.Errorf("reader: %w", err)
		}
		took = append(took, time.Since(start))
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	slices.Sort(took)
	fmt.Printf("%d connections, %d rounds: first write to last read min %v, median %v, max %v; writer CPU %.1f µs per write\n",
		n, rounds, took[0].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond),
		float64(cpu.Nanoseconds())/1e3/float64(n*rounds))
	return nil
}

// read opens n connections to addr, reads them on a goroutine each, and
// writes a byte to stdout each time all of them have received a message.
func read(addr string, n int) error {
	var got atomic.Int64
	round := make(chan struct{}, 1)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		go func() {
			buf := make([]byte, 4096)
			for {
				k, err := c.Read(buf)
				if got.Add(int64(k)) == int64(msgSize*n) {
					got.Store(0)
					round <- struct{}{}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	for range round {
		if _, err := os.Stdout.Write([]byte{'.'}); err != nil {
			return nil // the writer is gone
		}
	}
	return nil
}
