package main

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/matryer/is"
)

// The Docker files cannot be built here (no Docker engine); these checks
// keep what they promise in step with the code.

// TestDockerfilePinsTheGoVersion: the build image is the go.mod version.
func TestDockerfilePinsTheGoVersion(t *testing.T) {
	is := is.New(t)
	mod, err := os.ReadFile("go.mod")
	is.NoErr(err)
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	is.True(goLine != nil)
	docker, err := os.ReadFile("Dockerfile")
	is.NoErr(err)
	from := regexp.MustCompile(`(?m)^FROM golang:(\S+)-alpine AS build$`).FindSubmatch(docker)
	is.True(from != nil)
	is.Equal(string(from[1]), string(goLine[1]))
	// The health check is the binary's own probe of /livez (liveness: it
	// must not restart the container during a Redis outage; TestHealthcheck
	// shows what it asks).
	is.True(regexp.MustCompile(`HEALTHCHECK[^\n]*\n\s*CMD \["/usr/local/bin/notification-service", "healthcheck"\]`).Match(docker))
	is.True(regexp.MustCompile(`internal/version\.version=\$\{VERSION\}`).Match(docker))
}

// TestComposeGivesTheDrainTime: compose waits longer than SHUTDOWN_TIMEOUT
// before killing the service, checks liveness with the binary's probe, and does not publish the
// password-less Redis.
func TestComposeGivesTheDrainTime(t *testing.T) {
	is := is.New(t)
	compose, err := os.ReadFile("docker-compose.yml")
	is.NoErr(err)
	grace := regexp.MustCompile(`(?m)^\s+stop_grace_period: (\S+)$`).FindSubmatch(compose)
	shutdown := regexp.MustCompile(`(?m)^\s+SHUTDOWN_TIMEOUT: (\S+)$`).FindSubmatch(compose)
	is.True(grace != nil && shutdown != nil)
	g, err := time.ParseDuration(string(grace[1]))
	is.NoErr(err)
	s, err := time.ParseDuration(string(shutdown[1]))
	is.NoErr(err)
	is.True(g > s)
	is.True(regexp.MustCompile(`test: \["CMD", "/usr/local/bin/notification-service", "healthcheck"\]`).Match(compose))
	is.True(!regexp.MustCompile(`(?m)^\s+- "6379:6379"`).Match(compose))
}
