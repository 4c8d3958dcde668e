package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

// TLS and HTTP/2. With TLS_CERT_FILE and TLS_KEY_FILE set the service
// speaks HTTPS itself (wss:// for WebSockets), HTTP/2 negotiated by ALPN
// beside HTTP/1.1; HTTP2_CLEARTEXT allows HTTP/2 without TLS (h2c, prior
// knowledge) for a proxy in front that speaks it. Over HTTP/2 a browser's
// SSE streams share one connection, so its limit of six per origin over
// HTTP/1.1 no longer caps its tabs. WebSockets stay on HTTP/1.1.

// protocols are the HTTP versions the server speaks.
func (c config) protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(c.TLSCertFile != "")
	p.SetUnencryptedHTTP2(c.HTTP2Cleartext)
	return &p
}

// certCheckEvery spaces the checks for a renewed certificate: a handshake
// looks at the files' modification times at most this often.
const certCheckEvery = time.Second

// certReloader serves the certificate in TLS_CERT_FILE and TLS_KEY_FILE
// and picks up a renewed pair (certbot, cert-manager) without a restart:
// the next handshake after the files change uses it. A pair that fails to
// load (half written, mismatched) is logged and the previous one kept.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	modified time.Time // the newer of the two files' times when loaded
	checked  time.Time
}

// newCertReloader loads the pair once; an error here stops start-up.
func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger}
	modified, err := r.modTime()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS_CERT_FILE/TLS_KEY_FILE: %w", err)
	}
	r.cert, r.modified, r.checked = &cert, modified, time.Now()
	return r, nil
}

func (r *certReloader) modTime() (time.Time, error) {
	var newest time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return time.Time{}, fmt.Errorf("TLS_CERT_FILE/TLS_KEY_FILE: %w", err)
		}
		if st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	return newest, nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= certCheckEvery {
		r.checked = now
		r.reloadLocked()
	}
	return r.cert, nil
}

// reloadLocked loads the pair again if the files changed. The caller
// holds r.mu.
func (r *certReloader) reloadLocked() {
	modified, err := r.modTime()
	if err != nil || modified.Equal(r.modified) {
		if err != nil {
			r.logger.Error("TLS certificate check failed; keeping the current one", slog.Any("error", err))
		}
		return
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		// Maybe half written: the next check tries again.
		r.logger.Error("renewed TLS certificate does not load; keeping the current one", slog.Any("error", err))
		return
	}
	r.cert, r.modified = &cert, modified
	r.logger.Info("TLS certificate reloaded", slog.String("file", r.certFile))
}

// tlsConfig is the server's TLS configuration, or nil without TLS.
func (c config) tlsConfig(logger *slog.Logger) (*tls.Config, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	r, err := newCertReloader(c.TLSCertFile, c.TLSKeyFile, logger)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}, nil
}
