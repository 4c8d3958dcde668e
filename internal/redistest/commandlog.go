package redistest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// What a server ran, gathered for Options.ValidOn (commands.go says why
// three records) and checked as it comes in.

// commandLog gathers what one server ran and what of it is too new.
type commandLog struct {
	limit string
	docs  map[string]*commandDoc

	mu sync.Mutex
	// skipDocs: the server's statistics include the COMMAND DOCS that
	// loadDocs sent, not the test.
	skipDocs bool

	counts  map[string]int // command (subcommand) name → times MONITOR showed it
	slow    int            // commands read from the slow log
	statted []string       // the commands INFO commandstats named
	bad     map[string]int // message → times
	lost    []string       // records that did not survive
	took    time.Duration  // reading back (detach)

	monitor *monitor
}

// record checks a command MONITOR showed.
func (l *commandLog) record(argv []string) {
	msgs := checkCommand(l.docs, l.limit, argv)
	name := strings.ToLower(argv[0])
	if d := l.docs[name]; d != nil && d.subs != nil && len(argv) > 1 {
		name += "|" + strings.ToLower(argv[1])
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[name]++
	l.note(msgs)
}

// recordSlow checks a command the slow log holds.
func (l *commandLog) recordSlow(argv []string) {
	msgs := checkCommand(l.docs, l.limit, argv)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slow++
	l.note(msgs)
}

// note counts msgs. The caller holds l.mu.
func (l *commandLog) note(msgs []string) {
	for _, m := range msgs {
		l.bad[m]++
	}
}

// attach starts recording on a server just started with slowLogArgs: its
// slow log and command statistics hold what it ran since it started, and
// MONITOR shows what it runs from now on. It sends no CONFIG command, so a
// test may rename CONFIG away.
func (l *commandLog) attach(addr string) error {
	m, err := startMonitor(addr, l.record)
	if err != nil {
		return err
	}
	l.monitor = m
	return nil
}

// slowLogArgs make a redis-server count every command as slow and keep up
// to slowLogMax of them; a test that runs more between attach and detach
// fails rather than passing unchecked.
func slowLogArgs() []string {
	return []string{"--slowlog-log-slower-than", "0", "--slowlog-max-len", strconv.Itoa(slowLogMax)}
}

const slowLogMax = 2_000_000

// detach reads what the server ran since attach: everything MONITOR has
// shown up to now, the slow log and the command statistics.
func (l *commandLog) detach(addr string) {
	if l.monitor == nil {
		return
	}
	defer func() { l.monitor = nil }()
	started := time.Now()
	defer func() { l.took += time.Since(started) }()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, ReadTimeout: time.Minute})
	defer c.Close()
	// Generous: on a loaded machine, under the race detector, reading
	// back a large run takes a while, and each step ends on an event.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.monitor.flush(ctx, c); err != nil {
		l.lose("MONITOR: %v", err)
	}
	l.monitor.close()

	entries, err := c.Do(ctx, "SLOWLOG", "GET", "-1").Slice()
	if err != nil {
		l.lose("SLOWLOG GET: %v", err)
	}
	if len(entries) >= slowLogMax {
		l.lose("the slow log is full (%d entries): older commands were dropped", len(entries))
	}
	for _, e := range entries {
		fields := asSlice(e)
		if len(fields) < 4 {
			continue
		}
		var argv []string
		for _, a := range asSlice(fields[3]) {
			s, _ := a.(string)
			if strings.HasPrefix(s, "... (") && strings.HasSuffix(s, " more arguments)") {
				break
			}
			argv = append(argv, s)
		}
		if len(argv) > 0 {
			l.recordSlow(argv)
		}
	}

	stats, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		l.lose("INFO commandstats: %v", err)
	}
	for _, line := range strings.Split(stats, "\n") {
		name, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		l.recordName(name)
	}
}

// recordName checks a command INFO commandstats names ("config|get").
func (l *commandLog) recordName(name string) {
	if name == "command|docs" && l.skipDocs {
		return
	}
	base, sub, _ := strings.Cut(name, "|")
	d := l.docs[base]
	if d != nil && sub != "" {
		d = d.subs[name]
	}
	var msgs []string
	if d == nil {
		msgs = []string{name + ": not in COMMAND DOCS"}
	} else {
		msgs = checkDoc(name, d, l.limit, nil, false)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statted = append(l.statted, name)
	l.note(msgs)
}

func (l *commandLog) lose(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost = append(l.lost, fmt.Sprintf(format, args...))
}

// report fails t with what is newer than the limit, and logs what was
// checked.
func (l *commandLog) report(t interface {
	Helper()
	Errorf(string, ...any)
	Logf(string, ...any)
}) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.lost {
		t.Errorf("redistest: commands not checked against Redis %s: %s", l.limit, m)
	}
	msgs := make([]string, 0, len(l.bad))
	for m := range l.bad {
		msgs = append(msgs, m)
	}
	slices.Sort(msgs)
	for _, m := range msgs {
		t.Errorf("redistest: not valid on Redis %s: %s (%d times)", l.limit, m, l.bad[m])
	}
	names := make([]string, 0, len(l.counts))
	total := 0
	for n, c := range l.counts {
		names = append(names, fmt.Sprintf("%s×%d", n, c))
		total += c
	}
	slices.Sort(names)
	slices.Sort(l.statted)
	t.Logf("redistest: checked against Redis %s by its COMMAND DOCS: %d commands MONITOR showed (%s), %d in the slow log, and the %d INFO commandstats named (%s); read back in %s",
		l.limit, total, strings.Join(names, " "), l.slow, len(l.statted), strings.Join(slices.Compact(l.statted), " "), l.took.Round(time.Millisecond))
}
