package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"notification-service/pusher"
)

// docs/openapi.yaml as openapi_test.go reads it: the document loaded in
// order with its schemas compiled, its operations (routes), its response
// examples (runs) and the request each run sends.

// spec is docs/openapi.yaml: ordered (runs go in document order) and as
// plain JSON values for the schema compiler.
type spec struct {
	doc      yaml.MapSlice
	compiler *jsonschema.Compiler
}

const specURL = "file:///openapi.json"

func loadSpec(t *testing.T) *spec {
	t.Helper()
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.MapSlice
	if err := yaml.UnmarshalWithOptions(raw, &doc, yaml.UseOrderedMap()); err != nil {
		t.Fatalf("%s: %v", openAPIFile, err)
	}
	if v, _ := get(doc, "openapi").(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("%s: openapi %q, want 3.1.x", openAPIFile, v)
	}
	asJSON, err := json.Marshal(plain(doc))
	if err != nil {
		t.Fatal(err)
	}
	resource, err := jsonschema.UnmarshalJSON(bytes.NewReader(asJSON))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(specURL, resource); err != nil {
		t.Fatal(err)
	}
	return &spec{doc: doc, compiler: c}
}

// plain turns go-yaml's ordered maps into the maps encoding/json writes.
func plain(v any) any {
	switch v := v.(type) {
	case yaml.MapSlice:
		m := make(map[string]any, len(v))
		for _, it := range v {
			m[fmt.Sprint(it.Key)] = plain(it.Value)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = plain(v[i])
		}
		return out
	}
	return v
}

// get is key's value in an ordered map, or nil.
func get(v any, key string) any {
	m, ok := v.(yaml.MapSlice)
	if !ok {
		return nil
	}
	for _, it := range m {
		if fmt.Sprint(it.Key) == key {
			return it.Value
		}
	}
	return nil
}

func getString(v any, key string) string { s, _ := get(v, key).(string); return s }

// resolve follows a $ref within the document; it returns the node and its
// JSON pointer.
func (s *spec) resolve(t *testing.T, v any, at string) (any, string) {
	t.Helper()
	for i := 0; i < 8; i++ {
		ref := getString(v, "$ref")
		if ref == "" {
			return v, at
		}
		if !strings.HasPrefix(ref, "#/") {
			t.Fatalf("%s: only local $refs are read: %s", at, ref)
		}
		at = ref[1:]
		v = s.doc
		for _, tok := range strings.Split(ref[2:], "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			v = get(v, tok)
		}
		if v == nil {
			t.Fatalf("unresolved $ref %s", ref)
		}
	}
	t.Fatalf("%s: $ref chain too long", at)
	return nil, ""
}

func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// routes lists the document's operations as "METHOD /path".
func (s *spec) routes() []string {
	var out []string
	for _, p := range get(s.doc, "paths").(yaml.MapSlice) {
		for _, m := range p.Value.(yaml.MapSlice) {
			if method := fmt.Sprint(m.Key); slices.Contains(httpMethods, method) {
				out = append(out, strings.ToUpper(method)+" "+fmt.Sprint(p.Key))
			}
		}
	}
	slices.Sort(out)
	return out
}

// exampleRun is one response example: the request its name selects and
// what must come back.
type exampleRun struct {
	method, path, name string
	status             int
	mediaType          string             // "" for a response without content
	schema             *jsonschema.Schema // nil when the media type has none
	example            any                // the documented answer, for validation
	notRun             string             // x-not-run
	credentials        string             // x-credentials: "none", or "" for the operation's
	operation          any
	parameters         []any // resolved, the path item's then the operation's
	security           []string
}

func (r *exampleRun) String() string {
	return fmt.Sprintf("%s %s %d %s", strings.ToUpper(r.method), r.path, r.status, r.name)
}

// runs collects every response example, in document order.
func (s *spec) runs(t *testing.T) []*exampleRun {
	t.Helper()
	var runs []*exampleRun
	for _, p := range get(s.doc, "paths").(yaml.MapSlice) {
		path := fmt.Sprint(p.Key)
		item := p.Value
		for _, m := range item.(yaml.MapSlice) {
			method := fmt.Sprint(m.Key)
			if !slices.Contains(httpMethods, method) {
				continue
			}
			op := m.Value
			opAt := "/paths/" + pointerToken(path) + "/" + method
			var params []any
			for _, src := range []any{get(item, "parameters"), get(op, "parameters")} {
				list, _ := src.([]any)
				for _, prm := range list {
					resolved, _ := s.resolve(t, prm, opAt)
					params = append(params, resolved)
				}
			}
			var security []string
			list, _ := get(op, "security").([]any)
			for _, req := range list {
				for _, it := range req.(yaml.MapSlice) {
					security = append(security, fmt.Sprint(it.Key))
				}
			}
			responses, _ := get(op, "responses").(yaml.MapSlice)
			for _, resp := range responses {
				status, err := strconv.Atoi(fmt.Sprint(resp.Key))
				if err != nil {
					t.Fatalf("%s: response %v: want a status code", opAt, resp.Key)
				}
				r, at := s.resolve(t, resp.Value, opAt+"/responses/"+fmt.Sprint(resp.Key))
				base := exampleRun{method: method, path: path, status: status, operation: op, parameters: params, security: security}
				names, _ := get(r, "x-runs").([]any)
				for _, n := range names {
					run := base
					run.name = fmt.Sprint(n)
					runs = append(runs, &run)
				}
				content, _ := get(r, "content").(yaml.MapSlice)
				for _, c := range content {
					mediaType := fmt.Sprint(c.Key)
					var schema *jsonschema.Schema
					if get(c.Value, "schema") != nil {
						schemaAt := at + "/content/" + pointerToken(mediaType) + "/schema"
						if schema, err = s.compiler.Compile(specURL + "#" + schemaAt); err != nil {
							t.Fatalf("%s: %v", schemaAt, err)
						}
					}
					examples, _ := get(c.Value, "examples").(yaml.MapSlice)
					for _, e := range examples {
						ex, _ := s.resolve(t, e.Value, at)
						value, err := jsonValue(get(ex, "value"))
						if err != nil {
							t.Fatal(err)
						}
						run := base
						run.name, run.mediaType, run.schema, run.example = fmt.Sprint(e.Key), mediaType, schema, value
						run.notRun, run.credentials = getString(ex, "x-not-run"), getString(ex, "x-credentials")
						if get(ex, "x-not-run") != nil && run.notRun == "" {
							t.Errorf("%s: x-not-run must say why", &run)
						}
						runs = append(runs, &run)
					}
				}
			}
		}
	}
	return runs
}

// jsonValue is a YAML value as jsonschema reads JSON (numbers as
// json.Number).
func jsonValue(v any) (any, error) {
	b, err := json.Marshal(plain(v))
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// request builds the run's request: each parameter's example of the run's
// name (or its single example), the body's example of that name, and the
// operation's credentials. answers holds earlier runs' answers by example
// name, for x-value-from.
func (r *exampleRun) request(t *testing.T, base string, answers map[string]any) *http.Request {
	t.Helper()
	path := r.path
	q := url.Values{}
	header := http.Header{}
	for _, prm := range r.parameters {
		value, ok := r.paramValue(t, prm, answers)
		name := getString(prm, "name")
		if !ok {
			if get(prm, "required") == true {
				t.Fatalf("parameter %s is required but has no example %q and no single example", name, r.name)
			}
			continue
		}
		switch getString(prm, "in") {
		case "path":
			path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(value))
		case "query":
			q.Set(name, value)
		case "header":
			header.Set(name, value)
		}
	}
	var body []byte
	if ex := get(get(get(get(get(r.operation, "requestBody"), "content"), "application/json"), "examples"), r.name); ex != nil {
		value := plain(get(ex, "value"))
		if in := getString(ex, "x-scheduled-in"); in != "" {
			d, err := time.ParseDuration(in)
			if err != nil {
				t.Fatalf("x-scheduled-in: %v", err)
			}
			value.(map[string]any)["scheduled_at"] = time.Now().Add(d).UTC().Format(time.RFC3339)
		}
		var err error
		if body, err = json.Marshal(value); err != nil {
			t.Fatal(err)
		}
		header.Set("Content-Type", "application/json")
	}
	method := strings.ToUpper(r.method)
	rawQuery := q.Encode()
	if r.credentials != "none" {
		switch {
		case slices.Contains(r.security, "apiKeyBearer"):
			header.Set("Authorization", "Bearer "+docsAPIKey)
		case slices.Contains(r.security, "pusherSignature"):
			app := pusher.App{ID: docsPusherID, Key: docsPusherKey, Secret: docsPusherSecret}
			signed, err := pusher.Sign(app, pusher.APIRequest{Method: method, Path: path, RawQuery: rawQuery, Body: body}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			rawQuery = signed
		}
	}
	target := base + path
	if rawQuery != "" {
		target += "?" + rawQuery
	}
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	return req
}

// paramValue is the parameter's value for the run, as text.
func (r *exampleRun) paramValue(t *testing.T, prm any, answers map[string]any) (string, bool) {
	t.Helper()
	var value any
	if ex := get(get(prm, "examples"), r.name); ex != nil {
		value = get(ex, "value")
		if from := getString(ex, "x-value-from"); from != "" {
			name, pointer, _ := strings.Cut(from, "#")
			answer, ok := answers[name]
			if !ok {
				t.Fatalf("x-value-from %q: no earlier run %q answered (runs go in document order)", from, name)
			}
			for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
				if tok == "" {
					continue
				}
				m, _ := answer.(map[string]any)
				answer = m[tok]
			}
			value = answer
		}
	} else if v := get(prm, "example"); v != nil {
		value = v
	} else {
		return "", false
	}
	if value == nil {
		t.Fatalf("parameter %s: example %q has no value", getString(prm, "name"), r.name)
	}
	return fmt.Sprint(value), true
}
