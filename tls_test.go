package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/matryer/is"

	"notification-service/internal/streamtest"
)

// testCert is a self-signed certificate for 127.0.0.1 named cn.
type testCert struct {
	cert, key []byte // PEM
	parsed    *x509.Certificate
}

func newTestCert(t *testing.T, cn string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return testCert{
		cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		parsed: parsed,
	}
}

// install writes c where the service reads it, as a renewal tool does:
// the key first, then the certificate, each replaced whole.
func (c testCert) install(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, c.key}, {certFile, c.cert}} {
		tmp := f.path + ".new"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
}

// h2Client is a real HTTP/2 client over TLS trusting certs.
func h2Client(certs ...testCert) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c.parsed)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
}

// TestServeTLSWithHTTP2: with TLS_CERT_FILE and TLS_KEY_FILE the service
// speaks HTTPS: SSE streams over HTTP/2 (several sharing one connection),
// the REST API, wss:// WebSockets over HTTP/1.1; and a renewed
// certificate is served to new connections without a restart.
func TestServeTLSWithHTTP2(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, renewed := newTestCert(t, "first"), newTestCert(t, "renewed")
	first.install(t, certFile, keyFile)
	svc := startService(t, "TLS_CERT_FILE", certFile, "TLS_KEY_FILE", keyFile)
	base := strings.Replace(svc.url, "http://", "https://", 1)

	// Count the TCP connections the client opens: HTTP/2 multiplexes.
	var mu sync.Mutex
	dials := 0
	client := h2Client(first, renewed)
	tr := client.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials++
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	var streams []*streamtest.SSE
	for i := range 8 { // more than a browser's six per origin over HTTP/1.1
		sse := streamtest.DialSSE(t, client, base+"/sse?"+query("user_id", "tls-user", "channels", "tls"))
		is.Equal(sse.Resp.ProtoMajor, 2)
		sse.Ready(t)
		streams = append(streams, sse)
		_ = i
	}
	mu.Lock()
	is.Equal(dials, 1) // eight streams, one connection
	mu.Unlock()

	// A send over HTTPS reaches every stream.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/notifications/send",
		strings.NewReader(`{"title":"over tls","channels":["tls"]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	is.NoErr(err)
	var sent map[string]any
	is.NoErr(json.NewDecoder(resp.Body).Decode(&sent))
	resp.Body.Close()
	is.Equal(resp.StatusCode, http.StatusCreated)
	is.Equal(resp.ProtoMajor, 2)
	for _, sse := range streams {
		is.Equal(sse.Next(t)["id"], sent["id"])
	}

	// wss:// (WebSocket stays on HTTP/1.1).
	wsClient := h2Client(first, renewed)
	wsClient.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(svc.url, "http://", "wss://", 1)+"/ws?"+query("user_id", "tls-user"),
		&websocket.DialOptions{HTTPClient: wsClient})
	is.NoErr(err)
	_, data, err := ws.Read(ctx)
	is.NoErr(err)
	is.True(strings.Contains(string(data), `"event":"ready"`))
	ws.CloseNow()

	// Renewal: new connections get the new certificate.
	is.Equal(servedCert(t, svc.addr, first, renewed), "first")
	renewed.install(t, certFile, keyFile)
	streamtest.Eventually(t, "the renewed certificate served", func() bool { return servedCert(t, svc.addr, first, renewed) == "renewed" })
	for _, sse := range streams { // connections made before are untouched
		sse.Close()
	}
}

// servedCert is the common name of the certificate a new TLS connection
// gets.
func servedCert(t *testing.T, addr string, trusted ...testCert) string {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range trusted {
		pool.AddCert(c.parsed)
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestServeH2C: with HTTP2_CLEARTEXT a proxy speaking HTTP/2 without TLS
// (prior knowledge) gets SSE streams over HTTP/2, served by the stream path
// that stays inside net/http; HTTP/1.1 clients are served as before.
func TestServeH2C(t *testing.T) {
	is := is.New(t)
	svc := startService(t, "HTTP2_CLEARTEXT", "true")
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	sse := streamtest.DialSSE(t, h2c, svc.url+"/sse?"+query("user_id", "h2c-user"))
	is.Equal(sse.Resp.ProtoMajor, 2)
	sse.Ready(t)
	out := send(t, svc, map[string]any{"title": "over h2c", "user_id": "h2c-user"})
	is.Equal(sse.Next(t)["id"], out["id"])

	plain := svc.openSSE(t, query("user_id", "h1-user"))
	is.Equal(plain.Resp.ProtoMajor, 1)
	plain.Ready(t)
}
