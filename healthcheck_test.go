package main

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestHealthcheck: `notification-service healthcheck` (the image's
// HEALTHCHECK) probes /livez over plain HTTP, over TLS when TLS_CERT_FILE
// is set, and fails with a reason when nothing serves the port.
func TestHealthcheck(t *testing.T) {
	probe := func(t *testing.T, addr string, overrides ...string) (int, string) {
		t.Helper()
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		environ := testEnviron()
		environ["PORT"] = port
		for i := 0; i+1 < len(overrides); i += 2 {
			environ[overrides[i]] = overrides[i+1]
		}
		var stderr bytes.Buffer
		code := healthcheck(t.Context(), environ, &stderr)
		return code, stderr.String()
	}

	t.Run("plain HTTP", func(t *testing.T) {
		is := is.New(t)
		svc := startService(t)
		code, out := probe(t, svc.addr)
		is.Equal(code, 0)
		is.Equal(out, "")
	})

	t.Run("TLS", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		newTestCert(t, "probe").install(t, certFile, keyFile)
		svc := startService(t, "TLS_CERT_FILE", certFile, "TLS_KEY_FILE", keyFile)
		code, out := probe(t, svc.addr, "TLS_CERT_FILE", certFile, "TLS_KEY_FILE", keyFile)
		is.Equal(code, 0)
		is.Equal(out, "")
		// The plain-HTTP probe of a TLS port fails: the probe must follow
		// the configuration, which is why it reads it.
		code, out = probe(t, svc.addr)
		is.Equal(code, 1)
		is.True(strings.Contains(out, "/livez answered 400"))
	})

	t.Run("nothing serving", func(t *testing.T) {
		is := is.New(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		is.NoErr(err)
		addr := ln.Addr().String()
		is.NoErr(ln.Close())
		code, out := probe(t, addr)
		is.Equal(code, 1)
		is.True(strings.Contains(out, "connection refused"))
	})
}
