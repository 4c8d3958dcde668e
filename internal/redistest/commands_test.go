package redistest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"
)

func TestParseMonitorLine(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`+1700000000.000001 [0 127.0.0.1:5000] "SET" "k" "v"`, []string{"SET", "k", "v"}},
		{`+1700000000.000001 [0 lua] "XADD" "f" "MAXLEN" "~" "5" "1-0"`, []string{"XADD", "f", "MAXLEN", "~", "5", "1-0"}},
		{`+1700000000.000001 [3 unix:/tmp/r.sock] "GET" "a \"b\" \\ \n\x01"`, []string{"GET", "a \"b\" \\ \n\x01"}},
		{`+1700000000.000001 [0 127.0.0.1:5000] "SET" "" "{\"a\":[]}"`, []string{"SET", "", `{"a":[]}`}},
		{`+OK`, nil},
		{`+1700000000.000001 [0 lua] "unterminated`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			is := is.New(t)
			got, ok := parseMonitorLine(tt.line)
			is.Equal(ok, tt.want != nil)
			is.Equal(got, tt.want)
		})
	}
}

// TestCheckCommand proves the checker on commands whose versions are
// known: what Redis 6.0 runs passes, what came in 6.2 or 7.0 fails.
func TestCheckCommand(t *testing.T) {
	s := Start(t, Options{})
	docs, _, err := loadDocs(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		argv  string
		valid bool
	}{
		{"SET k v PX 5", true},
		{"SET k v NX PX 5", true},
		{"SET k v KEEPTTL", true}, // 6.0.0 itself
		{"SET k v PXAT 5", false},
		{"SET k v EXAT 5", false},
		{"SET k v GET", false},
		{"PEXPIREAT k 5", true},
		{"PEXPIRE k 5", true},
		{"PEXPIRE k 5 NX", false},
		{"XADD s MAXLEN ~ 10 5-0 f v", true},
		{"XADD s * f v", true},
		{"XADD s 5-* f v", false},
		{"XADD s NOMKSTREAM * f v", false},
		{"XADD s MINID ~ 5 * f v", false},
		{"XRANGE s - + COUNT 1", true},
		{"XRANGE s (1-0 +", false},
		{"ZRANGE k 0 -1 WITHSCORES", true},
		{"ZRANGE k 0 10 BYSCORE", false},
		{"ZRANGEBYSCORE k -inf (5 WITHSCORES LIMIT 0 1", true},
		{"ZADD k 1 m", true},
		{"ZADD k GT 1 m", false},
		{"GETDEL k", false},
		{"GETEX k", false},
		{"LMOVE a b LEFT RIGHT", false},
		{"COPY a b", false},
		{"XAUTOCLAIM s g c 0 0", false},
		{"LPOS k e", false}, // 6.0.6
		{"EVALSHA abc 0", true},
		{"EVAL_RO x 0", false},
		{"CONFIG GET notify-keyspace-events", true},
		{"CONFIG GET a b", false},
		{"CONFIG SET a b", true},
		{"CONFIG SET a b c d", false},
		{"INFO server", true},
		{"INFO server clients", false},
		{"CLIENT UNBLOCK 5", true},
		{"CLIENT ID", true},
		{"CLIENT INFO", false},
		{"HELLO 3", true},
		{"HELLO", false},
		{"NOSUCHCOMMAND", false},
	}
	for _, tt := range tests {
		t.Run(tt.argv, func(t *testing.T) {
			bad := checkCommand(docs, "6.0.0", strings.Fields(tt.argv))
			if tt.valid != (len(bad) == 0) {
				t.Errorf("valid on 6.0.0: want %v, got %v", tt.valid, bad)
			}
		})
	}
}

// TestHistoryRulesNameRealChanges keeps historyRules honest: each names a
// change COMMAND DOCS lists.
func TestHistoryRulesNameRealChanges(t *testing.T) {
	s := Start(t, Options{})
	docs, _, err := loadDocs(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	for key := range historyRules {
		name, version, _ := strings.Cut(key, " ")
		base, _, _ := strings.Cut(name, "|")
		d := docs[base]
		if d != nil && base != name {
			d = d.subs[name]
		}
		found := false
		for _, h := range d.history {
			found = found || h.version == version
		}
		if d == nil || !found {
			t.Errorf("historyRules[%q]: COMMAND DOCS has no such change", key)
		}
	}
}

func TestLuaCalls(t *testing.T) {
	is := is.New(t)
	calls, err := luaCalls(`
-- redis.call('GETDEL', 'in a comment')
local s = "redis.call('COPY')"
local x = redis.call('SET', KEYS[1], '1', 'PX', 5)
redis.pcall("ZADD", key, tostring(n), id .. 'x')
if redis.call('EXISTS', k(1, 2)) == 0 then redis.call('PUBLISH', CH, 'a,b') end
redis.call(cmd, 'x')
`)
	is.NoErr(err)
	is.Equal(calls, [][]string{
		{"SET", "", "1", "PX", ""},
		{"ZADD", "", "", ""},
		{"EXISTS", ""},
		{"PUBLISH", "", "a,b"},
		{"", "x"},
	})
}

func TestValidOnFailsATooNewCommand(t *testing.T) {
	is := is.New(t)
	s := Start(t, Options{Args: slowLogArgs()})
	docs, asked, err := loadDocs(s.Addr())
	is.NoErr(err)
	l := &commandLog{limit: "6.0.0", docs: docs, skipDocs: asked, counts: make(map[string]int), bad: make(map[string]int)}
	is.NoErr(l.attach(s.Addr()))
	c := s.Client()
	is.NoErr(c.Do(t.Context(), "SET", "k", "v", "PXAT", "99999999999999").Err())
	is.NoErr(c.Eval(t.Context(), "return redis.call('SET', 'k', 'v', 'GET')", nil).Err())
	is.NoErr(c.Do(t.Context(), "CONFIG", "GET", "maxmemory", "maxclients").Err()) // admin: not in MONITOR
	l.detach(s.Addr())
	rec := &recordingT{}
	l.report(rec)
	all := strings.Join(rec.errors, "\n")
	is.True(strings.Contains(all, "set: option PXAT since 6.2.0"))
	is.True(strings.Contains(all, "set: option GET since 6.2.0"))         // run by a script
	is.True(strings.Contains(all, "config|get: more than one parameter")) // seen in the slow log
}

type recordingT struct{ errors []string }

func (r *recordingT) Helper() {}
func (r *recordingT) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingT) Logf(string, ...any) {}
