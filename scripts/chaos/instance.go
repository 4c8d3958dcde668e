package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// instanceCount is how many instances share the Redis: three, the third
// behind the proxy.
const instanceCount = 3

var instanceNames = [instanceCount]string{"A", "B", "C"}

// proxied is the instance behind the proxy.
const proxied = 2

// instance is one notification-service process on a fixed port, so a
// restart comes back where clients and the proxy look for it.
type instance struct {
	process
	index int
	port  int
}

func newInstance(i int, bin, dir string, port int, env []string) *instance {
	return &instance{index: i, port: port, process: process{
		name: "instance " + instanceNames[i],
		argv: []string{bin},
		// A copy: the caller's slice is shared by the three instances.
		env:     append(slices.Clone(env), "PORT="+strconv.Itoa(port)),
		logPath: filepath.Join(dir, "instance-"+instanceNames[i]+".log"),
	}}
}

func (in *instance) base() string { return "http://127.0.0.1:" + strconv.Itoa(in.port) }

// up starts the instance and waits until /health answers 200.
func (in *instance) up(ctx context.Context) error {
	if err := in.start(); err != nil {
		return err
	}
	return in.waitReady(ctx, 30*time.Second, in.healthy)
}

var healthClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func (in *instance) healthy(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.base()+"/health", nil)
	resp, err := healthClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health answered %d", resp.StatusCode)
	}
	return nil
}
