package main

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// logFigures is what an instance logged at WARN and ERROR: evidence for a
// finding, counted by message.
type logFigures struct {
	Instance string         `json:"instance"`
	Path     string         `json:"path"`
	Starts   int            `json:"starts"`
	Errors   int            `json:"errors"`
	Warnings int            `json:"warnings"`
	Messages map[string]int `json:"messages"` // "LEVEL message" → count, the most frequent
	Samples  []string       `json:"samples,omitempty"`
}

var logMessage = regexp.MustCompile(`msg=("(?:[^"\\]|\\.)*"|\S+)`)

// startupWarnings are what every instance of this run says at start-up
// (open mode, no API key): not findings.
var startupWarnings = []string{"API_KEY is not set", "open mode:"}

func (r *runner) serverLogs() []logFigures {
	var out []logFigures
	for _, in := range r.instances {
		if in == nil {
			continue
		}
		f := logFigures{Instance: instanceNames[in.index], Path: in.logPath, Starts: in.starts, Messages: map[string]int{}}
		file, err := os.Open(in.logPath)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		counts := map[string]int{}
		for sc.Scan() {
			line := sc.Text()
			var level string
			switch {
			case strings.Contains(line, "level=ERROR"):
				level = "ERROR"
				f.Errors++
			case strings.Contains(line, "level=WARN"):
				level = "WARN"
				f.Warnings++
			default:
				continue
			}
			msg := "?"
			if m := logMessage.FindStringSubmatch(line); m != nil {
				msg = strings.Trim(m[1], `"`)
			}
			if level == "WARN" && slices.ContainsFunc(startupWarnings, func(w string) bool { return strings.HasPrefix(msg, w) }) {
				f.Warnings--
				continue
			}
			key := level + " " + msg
			if counts[key] == 0 && len(f.Samples) < 8 {
				f.Samples = append(f.Samples, truncate(line, 400))
			}
			counts[key]++
		}
		file.Close()
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
		for _, k := range keys[:min(len(keys), 12)] {
			f.Messages[k] = counts[k]
		}
		out = append(out, f)
	}
	return out
}
