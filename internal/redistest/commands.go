package redistest

import (
	"context"
	"fmt"
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

// change is one entry of a command's history.
type change struct {
	version, desc string
	// aboutTokens: it names only tokens the arguments themselves date to
	// its version or later, so the token check covers it.
	aboutTokens bool
}

// commandDoc is what COMMAND DOCS says of one command or subcommand.
type commandDoc struct {
	since   string
	history []change
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
	args, _ := f["arguments"].([]any)
	addTokens(d.tokens, args, "0.0.0")
	hist, _ := f["history"].([]any)
	for _, h := range hist {
		if e, _ := h.([]any); len(e) == 2 {
			c := change{}
			c.version, _ = e[0].(string)
			c.desc, _ = e[1].(string)
			c.aboutTokens = aboutTokens(d, c.version, c.desc)
			d.history = append(d.history, c)
		}
	}
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
		version, desc := h.version, h.desc
		if h.aboutTokens || !newer(version, limit) {
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
