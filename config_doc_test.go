package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestEveryVariableIsDocumented: each variable the config struct reads has
// a row in docs/CONFIGURATION.md, so a setting added in config.go cannot go
// unmentioned.
func TestEveryVariableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/CONFIGURATION.md")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	fields := reflect.TypeFor[config]()
	for i := range fields.NumField() {
		name, _, _ := strings.Cut(fields.Field(i).Tag.Get("env"), ",")
		if name == "" {
			continue
		}
		// RATE_*_BURST share their rate's row: "`RATE_SENDS_PER_ADDR`, `…_BURST`".
		documented := strings.TrimSuffix(name, "_BURST")
		if !strings.Contains(string(doc), "`"+documented+"`") {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/CONFIGURATION.md does not mention %s", strings.Join(missing, ", "))
	}
}
