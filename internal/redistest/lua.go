package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CheckScripts fails t if a Lua script among scripts (name → source) calls
// a Redis command, or passes it a literal option, that came in a Redis
// later than limit, by the COMMAND DOCS of s. It reads the source, so it
// covers the branches a test run does not take, where Options.ValidOn sees
// what ran with every argument, computed ones included; a command whose
// name is not a literal fails, since it cannot be checked.
func CheckScripts(t testing.TB, s *Server, limit string, scripts map[string]string) {
	t.Helper()
	docs, _, err := loadDocs(s.Addr())
	if err != nil {
		t.Fatalf("redistest: CheckScripts: %v", err)
	}
	found := 0
	for name, src := range scripts {
		calls, err := luaCalls(src)
		if err != nil {
			t.Errorf("redistest: %s: %v", name, err)
			continue
		}
		found += len(calls)
		for _, argv := range calls {
			if argv[0] == "" {
				t.Errorf("redistest: %s: a redis.call whose command is not a literal cannot be checked", name)
				continue
			}
			for _, m := range checkCommand(docs, limit, argv) {
				t.Errorf("redistest: %s: not valid on Redis %s: %s", name, limit, m)
			}
		}
	}
	if found == 0 {
		t.Errorf("redistest: no redis.call in %d scripts: nothing checked", len(scripts))
	}
	t.Logf("redistest: %d redis.call in %d scripts checked against Redis %s", found, len(scripts), limit)
}

// CheckLuaFiles is CheckScripts for the files pattern matches (as
// filepath.Glob), on a server of its own. It fails when none match.
func CheckLuaFiles(t *testing.T, limit, pattern string) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("redistest: no Lua file matches %q (%v)", pattern, err)
	}
	scripts := make(map[string]string, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		scripts[f] = string(b)
	}
	CheckScripts(t, Start(t, Options{}), limit, scripts)
}

// luaCalls finds every redis.call and redis.pcall in src, outside comments
// and strings, and returns their arguments: a literal string as its value,
// anything else (a variable, a concatenation) as "".
func luaCalls(src string) ([][]string, error) {
	var calls [][]string
	for i := 0; i < len(src); {
		switch {
		case strings.HasPrefix(src[i:], "--"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				return calls, nil
			}
			i += end
		case src[i] == '\'' || src[i] == '"':
			_, n, err := luaString(src[i:])
			if err != nil {
				return nil, err
			}
			i += n
		case strings.HasPrefix(src[i:], "redis.call(") || strings.HasPrefix(src[i:], "redis.pcall("):
			open := i + strings.IndexByte(src[i:], '(')
			args, n, err := luaArgs(src[open:])
			if err != nil {
				return nil, fmt.Errorf("at %q: %w", src[i:min(i+40, len(src))], err)
			}
			calls = append(calls, args)
			i = open + n
		default:
			i++
		}
	}
	return calls, nil
}

// luaArgs reads "(a, 'b', f(c))" and returns its arguments as luaCalls
// does, and the length read.
func luaArgs(s string) ([]string, int, error) {
	var raw []string
	depth, start := 0, 1
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\'' || c == '"':
			_, n, err := luaString(s[i:])
			if err != nil {
				return nil, 0, err
			}
			i += n
			continue
		case c == '(' || c == '{' || c == '[':
			depth++
		case c == ')' || c == '}' || c == ']':
			depth--
			if depth == 0 {
				raw = append(raw, s[start:i])
				args := make([]string, len(raw))
				for k, a := range raw {
					args[k] = literal(strings.TrimSpace(a))
				}
				return args, i + 1, nil
			}
		case c == ',' && depth == 1:
			raw = append(raw, s[start:i])
			start = i + 1
		}
		i++
	}
	return nil, 0, fmt.Errorf("unclosed call")
}

// literal is the value of arg if arg is one quoted string and nothing
// else, and "" otherwise.
func literal(arg string) string {
	if arg == "" || (arg[0] != '\'' && arg[0] != '"') {
		return ""
	}
	v, n, err := luaString(arg)
	if err != nil || n != len(arg) {
		return ""
	}
	return v
}

// luaString reads a quoted Lua string at the start of s and returns its
// value and length.
func luaString(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case q:
			return b.String(), i + 1, nil
		case '\\':
			i++
			if i < len(s) {
				b.WriteByte(s[i])
			}
		case '\n':
			return "", 0, fmt.Errorf("unterminated string")
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}
