package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Which Redis the service's commands run on. With Options.ValidOn set, a
// test records every command its redis-server runs and fails if one of
// them, or one of its options, came in a Redis newer than ValidOn: the
// installed server is newer than the oldest the service supports, so a test
// passing against it proves nothing about the older one by itself.
//
// Three records, because each misses something:
//   - MONITOR shows every command with all its arguments, those a Lua
//     script runs included ("[0 lua]"), but not admin commands (CONFIG,
//     CLIENT UNBLOCK, DEBUG);
//   - the slow log, with every command counted as slow, holds admin
//     commands too, with their first 32 arguments;
//   - INFO commandstats names every command and subcommand that ran.
//
// Each command is checked against the server's own COMMAND DOCS (Redis 7
// documents, for every command, subcommand and argument token, the version
// it came in, and a history of later changes): the command, its subcommand
// and every token in its arguments must be no newer than ValidOn, and every
// history entry newer than ValidOn must be either about tokens (the token
// check covers it) or one of historyRules, which check what the change
// allowed. An entry neither covers fails the test, so a command the service
// starts using later is reviewed before it passes.
//
// What no record shows: a command Redis rejects before running it (an
// unknown command or subcommand, such as the optional CLIENT SETINFO that
// go-redis sends when it connects and ignores when refused). A server older
// than the command rejects it in the same way, and the tests pass with it
// rejected here.

// historyRules check what a history entry newer than 6.0.0 allowed, for the
// entries that are not about new tokens. The key is "<command> <version>",
// a subcommand written "config|get".
var historyRules = map[string]func(args []string) error{
	// NX and GET together: GET alone came in 6.2.0, which the token check
	// catches.
	"set 7.0.0": func([]string) error { return nil },
	"xadd 7.0.0": func(args []string) error {
		for _, a := range args {
			if explicitSeqID.MatchString(a) {
				return fmt.Errorf("the explicit ID form <ms>-* (%q)", a)
			}
		}
		return nil
	},
	"xrange 6.2.0":     exclusiveRange,
	"xrevrange 6.2.0":  exclusiveRange,
	"info 7.0.0":       atMost(1, "more than one section"),
	"config|get 7.0.0": atMost(1, "more than one parameter"),
	"config|set 7.0.0": atMost(2, "more than one parameter"),
	"hello 6.2.0": func(args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("HELLO without a protocol version")
		}
		return nil
	},
}

var explicitSeqID = regexp.MustCompile(`^[0-9]+-\*$`)

// exclusiveRange: XRANGE key start end, where "(" before an id (6.2.0)
// makes the bound exclusive.
func exclusiveRange(args []string) error {
	for _, a := range args[min(1, len(args)):min(3, len(args))] {
		if strings.HasPrefix(a, "(") {
			return fmt.Errorf("an exclusive range (%q)", a)
		}
	}
	return nil
}

func atMost(n int, what string) func([]string) error {
	return func(args []string) error {
		if len(args) > n {
			return fmt.Errorf("%s (%d arguments)", what, len(args))
		}
		return nil
	}
}

// commandDoc is what COMMAND DOCS says of one command or subcommand.
type commandDoc struct {
	since   string
	history [][2]string // version, description
	// tokens maps each token of the arguments to the version it came in
	// (its own since, or an enclosing argument's, whichever is later).
	tokens map[string]string
	subs   map[string]*commandDoc
}

var (
	docsOnce   sync.Once
	docsParsed map[string]*commandDoc
	docsErr    error
)

// loadDocs reads COMMAND DOCS once per test binary: every server a test
// starts is the same redis-server. asked says whether it asked the server
// at addr just now: its slow log is emptied again, but its command
// statistics keep the COMMAND DOCS (7.0) that the test did not send.
func loadDocs(addr string) (docs map[string]*commandDoc, asked bool, err error) {
	docsOnce.Do(func() {
		asked = true
		c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		raw, err := c.Do(ctx, "COMMAND", "DOCS").Slice()
		if err != nil {
			docsErr = fmt.Errorf("COMMAND DOCS (Redis 7 or later): %w", err)
			return
		}
		if err := c.Do(ctx, "SLOWLOG", "RESET").Err(); err != nil {
			docsErr = fmt.Errorf("SLOWLOG RESET: %w", err)
			return
		}
		docsParsed = parseDocs(raw)
	})
	return docsParsed, asked, docsErr
}

// parseDocs reads COMMAND DOCS's RESP2 answer: name, doc, name, doc...,
// each doc a list of field, value.
func parseDocs(raw []any) map[string]*commandDoc {
	out := make(map[string]*commandDoc)
	for i := 0; i+1 < len(raw); i += 2 {
		name, _ := raw[i].(string)
		fields, _ := raw[i+1].([]any)
		out[strings.ToLower(name)] = parseDoc(pairs(fields))
	}
	return out
}

func parseDoc(f map[string]any) *commandDoc {
	d := &commandDoc{tokens: make(map[string]string)}
	d.since, _ = f["since"].(string)
	hist, _ := f["history"].([]any)
	for _, h := range hist {
		if e, _ := h.([]any); len(e) == 2 {
			v, _ := e[0].(string)
			desc, _ := e[1].(string)
			d.history = append(d.history, [2]string{v, desc})
		}
	}
	args, _ := f["arguments"].([]any)
	addTokens(d.tokens, args, "0.0.0")
	if subs, _ := f["subcommands"].([]any); len(subs) > 0 {
		d.subs = parseDocs(subs)
	}
	return d
}

func addTokens(tokens map[string]string, args []any, since string) {
	for _, a := range args {
		f := pairs(asSlice(a))
		s := since
		if own, _ := f["since"].(string); own != "" && newer(own, s) {
			s = own
		}
		if tok, _ := f["token"].(string); tok != "" {
			tok = strings.ToUpper(tok)
			// A token in two places keeps the later version: a check
			// that flags an old use is safe, one that passes a new use
			// is not.
			if cur, ok := tokens[tok]; !ok || newer(s, cur) {
				tokens[tok] = s
			}
		}
		addTokens(tokens, asSlice(f["arguments"]), s)
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func pairs(fields []any) map[string]any {
	m := make(map[string]any, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		if k, ok := fields[i].(string); ok {
			m[k] = fields[i+1]
		}
	}
	return m
}

// newer reports whether version a is later than b ("6.2.0" > "6.0.0").
func newer(a, b string) bool {
	pa, pb := versionParts(a), versionParts(b)
	return slices.Compare(pa[:], pb[:]) > 0
}

func versionParts(v string) [3]int {
	var p [3]int
	for i, s := range strings.SplitN(v, ".", 3) {
		p[i], _ = strconv.Atoi(s)
	}
	return p
}

var backticked = regexp.MustCompile("`([^`]+)`")

// checkCommand returns what in argv (as Redis received it) is newer than
// limit, one message each.
func checkCommand(all map[string]*commandDoc, limit string, argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	name := strings.ToLower(argv[0])
	d := all[name]
	if d == nil {
		return []string{fmt.Sprintf("%s: not in COMMAND DOCS", name)}
	}
	args := argv[1:]
	if d.subs != nil && len(args) > 0 {
		sub := d.subs[name+"|"+strings.ToLower(args[0])]
		if sub == nil {
			return []string{fmt.Sprintf("%s %s: not in COMMAND DOCS", name, args[0])}
		}
		name, d, args = name+"|"+strings.ToLower(args[0]), sub, args[1:]
	}
	return checkDoc(name, d, limit, args, true)
}

// checkDoc checks a command known by name alone (seenArgs false: only INFO
// commandstats saw it) or with its arguments.
func checkDoc(name string, d *commandDoc, limit string, args []string, seenArgs bool) []string {
	var bad []string
	if newer(d.since, limit) {
		bad = append(bad, fmt.Sprintf("%s: command since %s", name, d.since))
	}
	for _, a := range args {
		if since, ok := d.tokens[strings.ToUpper(a)]; ok && newer(since, limit) {
			bad = append(bad, fmt.Sprintf("%s: option %s since %s", name, strings.ToUpper(a), since))
		}
	}
	for _, h := range d.history {
		version, desc := h[0], h[1]
		if !newer(version, limit) || aboutTokens(d, version, desc) {
			continue
		}
		rule, ok := historyRules[name+" "+version]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s: unreviewed change in %s (%q): add a rule to historyRules", name, version, desc))
		case !seenArgs:
			// Only INFO commandstats named it: the slow log holds every
			// command with its arguments, so this is a command that
			// skips it (HELLO with AUTH); its rule cannot run.
		default:
			if err := rule(args); err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v, which came in %s", name, err, version))
			}
		}
	}
	return bad
}

// aboutTokens reports whether a history entry names only tokens that the
// arguments themselves date to its version or later, so that the token
// check covers it.
func aboutTokens(d *commandDoc, version, desc string) bool {
	words := backticked.FindAllStringSubmatch(desc, -1)
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		since, ok := d.tokens[strings.ToUpper(w[1])]
		if !ok || newer(version, since) {
			return false
		}
	}
	return true
}

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
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
	t.Logf("redistest: checked against Redis %s by its COMMAND DOCS: %d commands MONITOR showed (%s), %d in the slow log, and the %d INFO commandstats named (%s)",
		l.limit, total, strings.Join(names, " "), l.slow, len(l.statted), strings.Join(slices.Compact(l.statted), " "))
}

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
