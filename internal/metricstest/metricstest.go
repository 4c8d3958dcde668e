// Package metricstest scrapes a /metrics endpoint for tests and reads the
// samples back by series, the way an operator's query would name them. It
// parses only what the Prometheus text format needs for that: no
// exemplars, no timestamps.
package metricstest

import (
	"bufio"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Samples maps a series, written as the text format writes it
// (`name{label="value",...}`, labels sorted by name), to its value.
type Samples map[string]float64

// Scrape GETs url with the header name, value pairs given and parses the
// answer. It fails the test unless the answer is 200 in the text format.
func Scrape(t testing.TB, client *http.Client, url string, headers ...string) Samples {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: status %d: %s", url, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape %s: Content-Type %q, want the text format", url, ct)
	}
	s, err := Parse(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return s
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (Samples, error) {
	s := Samples{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The value follows the series after the last space (label values
		// may hold spaces, the value never does).
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, err
		}
		s[line[:i]] = v
	}
	return s, sc.Err()
}

// Get is the value of a series, and whether it is there.
func (s Samples) Get(series string) (float64, bool) {
	v, ok := s[series]
	return v, ok
}

// Value is the value of a series, NaN when it is missing.
func (s Samples) Value(series string) float64 {
	if v, ok := s[series]; ok {
		return v
	}
	return math.NaN()
}

// Sum adds every series of the metric name, whatever their labels.
func (s Samples) Sum(name string) float64 {
	total := 0.0
	for series, v := range s {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
		}
	}
	return total
}

// Has says whether any series of the metric name is there.
func (s Samples) Has(name string) bool {
	for series := range s {
		if series == name || strings.HasPrefix(series, name+"{") {
			return true
		}
	}
	return false
}
