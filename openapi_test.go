package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"notification-service/pusher"
)

// docs/openapi.yaml is checked against the code two ways:
//
//   - TestOpenAPIRoutes: the routes the server registers (every "METHOD
//     /path" string literal in transport/*.go, which is how routes.go writes
//     them) are exactly the operations the document describes, and each documented route answers on a running
//     service as a registered one does (not the mux's "no such endpoint");
//   - TestOpenAPIExamples: every example validates against its schema, and
//     every response example not marked x-not-run is sent to a running
//     service, whose status and body must match the response and its
//     schema. The head of docs/openapi.yaml says how a run is built.
//
// YAML is read with github.com/goccy/go-yaml and schemas (JSON Schema
// 2020-12, OpenAPI 3.1's dialect) checked with
// github.com/santhosh-tekuri/jsonschema/v6; the service never imports them.

const openAPIFile = "docs/openapi.yaml"

// The test service's credentials, as docs/openapi.yaml's head names them.
const (
	docsAPIKey       = "docs-example-api-key-0123456789"
	docsPusherID     = "1"
	docsPusherKey    = "app-key"
	docsPusherSecret = "app-secret-0123456789"
)

// preflightRoute answers CORS preflights for the browser routes (the info
// description of the document says so); it is no operation of its own.
const preflightRoute = "OPTIONS /"

func TestOpenAPIRoutes(t *testing.T) {
	spec := loadSpec(t)
	documented := spec.routes()
	registered := registeredRoutes(t, "transport")

	var missing, extra []string
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			missing = append(missing, r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(registered, r) {
			extra = append(extra, r)
		}
	}
	if len(missing) > 0 {
		t.Errorf("routes registered in transport/ but missing from %s (add an operation for each):\n\t%s",
			openAPIFile, strings.Join(missing, "\n\t"))
	}
	if len(extra) > 0 {
		t.Errorf("routes documented in %s that the server does not register (remove them, or register them):\n\t%s",
			openAPIFile, strings.Join(extra, "\n\t"))
	}

	// Each documented route reaches a handler on the running service: the
	// mux's own answer to an unknown route is a 404 "no such endpoint" or a
	// 405, which no handler gives.
	svc := startDocsService(t)
	for _, r := range documented {
		method, path, _ := strings.Cut(r, " ")
		path = regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x")
		status, body, err := svc.try(method, path, nil)
		if err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		if status == http.StatusMethodNotAllowed || (status == http.StatusNotFound && strings.Contains(string(body), "no such endpoint")) {
			t.Errorf("%s is documented, but the running service answers it as an unknown route: %d %s", r, status, body)
		}
	}
}

// registeredRoutes reads the route patterns registered in the non-test Go
// files of dir: every string literal of the form "METHOD /path", which is how
// a pattern is written whether it is passed to mux.Handle, to a helper like
// browser, or kept in a table of routes. "{$}" and "{name...}" become what
// the document writes.
func registeredRoutes(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	pattern := regexp.MustCompile(`^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/\S*)$`)
	fset := token.NewFileSet()
	var routes []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !pattern.MatchString(s) || s == preflightRoute {
				return true
			}
			s = strings.ReplaceAll(s, "{$}", "")
			s = regexp.MustCompile(`\{(\w+)\.\.\.\}`).ReplaceAllString(s, "{$1}")
			if strings.HasSuffix(s, " ") {
				s += "/"
			}
			if !slices.Contains(routes, s) {
				routes = append(routes, s)
			}
			return true
		})
	}
	if len(routes) == 0 {
		t.Fatalf("no route found in %s/*.go", dir)
	}
	slices.Sort(routes)
	return routes
}

func TestOpenAPIExamples(t *testing.T) {
	spec := loadSpec(t)
	runs := spec.runs(t)
	if len(runs) == 0 {
		t.Fatal("no example to run")
	}

	// Every example, run or not, is what its schema allows.
	for _, r := range runs {
		if r.schema == nil || r.example == nil {
			continue
		}
		if err := r.schema.Validate(r.example); err != nil {
			t.Errorf("%s: the example does not validate against its schema: %v", r, err)
		}
	}

	svc := startDocsService(t)
	live := svc.openSSE(t, query("user_id", "user123", "channels", "tareas"))
	ready := live.Ready(t)
	answers := map[string]any{"live-connection": ready["connection_id"]}
	ran := 0
	for _, r := range runs {
		if r.notRun != "" {
			continue
		}
		ran++
		t.Run(r.String(), func(t *testing.T) {
			req := r.request(t, svc.url, answers)
			res, err := svc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			mediaType, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
			var body []byte
			if mediaType != "text/event-stream" { // a stream: its head is enough
				body, _ = io.ReadAll(io.LimitReader(res.Body, 1<<20))
			}
			if res.StatusCode != r.status {
				t.Fatalf("%s %s: status %d, documented %d; body %s", req.Method, req.URL.RequestURI(), res.StatusCode, r.status, body)
			}
			if r.mediaType == "" {
				if len(body) > 0 {
					t.Errorf("documented without content, got %q", body)
				}
				return
			}
			if mediaType != r.mediaType {
				t.Fatalf("Content-Type %q, documented %q", res.Header.Get("Content-Type"), r.mediaType)
			}
			if r.mediaType != "application/json" || r.schema == nil {
				return
			}
			got, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("not JSON: %v: %s", err, body)
			}
			if err := r.schema.Validate(got); err != nil {
				t.Fatalf("the answer does not validate against the documented schema: %v\nanswer: %s", err, body)
			}
			answers[r.name] = got
		})
	}
	t.Logf("%d runs against the service, %d examples validated only (x-not-run)", ran, len(runs)-ran)
}

// startDocsService runs the service as docs/openapi.yaml's head describes
// it: open mode, the API key and the Pusher app set.
func startDocsService(t *testing.T) *service {
	t.Helper()
	return startService(t, "API_KEY", docsAPIKey, "PUSHER_APP_ID", docsPusherID,
		"PUSHER_APP_KEY", docsPusherKey, "PUSHER_APP_SECRET", docsPusherSecret)
}

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
