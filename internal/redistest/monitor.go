package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// monitor reads a MONITOR stream on a connection of its own.
type monitor struct {
	conn   net.Conn
	record func([]string)
	marks  chan string // ECHO arguments seen, for flush
	done   chan error  // the reader's end
}

func startMonitor(addr string, record func([]string)) (*monitor, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(conn, 1<<16)
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		conn.Close()
		return nil, err
	}
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		conn.Close()
		return nil, fmt.Errorf("MONITOR: %q, %v", line, err)
	}
	conn.SetDeadline(time.Time{})
	m := &monitor{conn: conn, record: record, marks: make(chan string, 16), done: make(chan error, 1)}
	go func() { m.done <- m.read(r) }()
	return m, nil
}

func (m *monitor) read(r *bufio.Reader) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		argv, ok := parseMonitorLine(strings.TrimRight(line, "\r\n"))
		if !ok {
			continue
		}
		m.record(argv)
		if len(argv) == 2 && strings.EqualFold(argv[0], "echo") && strings.HasPrefix(argv[1], markPrefix) {
			select {
			case m.marks <- argv[1]:
			default:
			}
		}
	}
}

const markPrefix = "redistest-monitor-mark-"

// flush returns once MONITOR has shown everything the server ran before
// the call: it sends a mark through c and waits for MONITOR to show it.
func (m *monitor) flush(ctx context.Context, c *redis.Client) error {
	mark := markPrefix + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := c.Echo(ctx, mark).Err(); err != nil {
		return err
	}
	for {
		select {
		case got := <-m.marks:
			if got == mark {
				return nil
			}
		case err := <-m.done:
			return fmt.Errorf("ended before the test did: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("the mark did not come through: %w", ctx.Err())
		}
	}
}

func (m *monitor) close() {
	m.conn.Close()
	<-m.done
}

// parseMonitorLine reads `+1700000000.000000 [0 127.0.0.1:5000] "SET" "k" "v"`
// (or "[0 lua]" for a command a script ran) into its arguments, unquoting
// them as Redis quoted them (sdscatrepr).
func parseMonitorLine(line string) ([]string, bool) {
	_, rest, ok := strings.Cut(line, "] ")
	if !ok || !strings.HasPrefix(line, "+") {
		return nil, false
	}
	var argv []string
	for rest != "" {
		if rest[0] == ' ' {
			rest = rest[1:]
			continue
		}
		if rest[0] != '"' {
			return nil, false
		}
		var b strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			c := rest[i]
			if c != '\\' || i+1 >= len(rest) {
				b.WriteByte(c)
				continue
			}
			i++
			switch rest[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'x':
				if i+2 < len(rest) {
					if v, err := strconv.ParseUint(rest[i+1:i+3], 16, 8); err == nil {
						b.WriteByte(byte(v))
						i += 2
						continue
					}
				}
				b.WriteByte('x')
			default:
				b.WriteByte(rest[i])
			}
		}
		if i >= len(rest) {
			return nil, false
		}
		argv = append(argv, b.String())
		rest = rest[i+1:]
	}
	return argv, len(argv) > 0
}
