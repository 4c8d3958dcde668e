package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// healthcheckTimeout bounds the whole probe; the image's HEALTHCHECK allows
// 5 s.
const healthcheckTimeout = 3 * time.Second

// healthcheck is `notification-service healthcheck`, the container's
// liveness probe, run inside the image beside the service. It reads the
// same environment the service does and asks the service's own /livez on
// 127.0.0.1:PORT, over TLS when TLS_CERT_FILE is set, so the image's
// HEALTHCHECK follows the configuration instead of assuming plain HTTP.
// The certificate is not verified: it names the public host, not
// 127.0.0.1, and the probe only asks whether this process serves. It
// returns the exit status: 0 when /livez answers 200, 1 otherwise.
func healthcheck(ctx context.Context, environ map[string]string, stderr io.Writer) int {
	cfg, err := loadConfig(environ)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	if cfg.Port == 0 {
		fmt.Fprintln(stderr, "healthcheck: PORT=0 picks a port at start-up; set PORT to probe it")
		return 1
	}
	scheme, transport := "http", &http.Transport{}
	if cfg.TLSCertFile != "" {
		scheme = "https"
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // a loopback liveness probe; see above
	}
	defer transport.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	url := scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)) + "/livez"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s answered %s\n", url, resp.Status)
		return 1
	}
	return 0
}
