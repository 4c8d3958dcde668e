package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
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
// openapi_spec_test.go reads the document for both. YAML is read with
// github.com/goccy/go-yaml and schemas (JSON Schema 2020-12, OpenAPI 3.1's
// dialect) checked with github.com/santhosh-tekuri/jsonschema/v6; the
// service never imports them.

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
