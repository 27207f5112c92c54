package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// HealthcheckCmd probes a health endpoint and says by its exit code whether
// it answered 2xx. The container image has no shell, curl or wget, so a
// Docker healthcheck runs the binary itself:
//
//	test: ["CMD", "scribeq", "healthcheck", "http://127.0.0.1:8780/readyz"]
type HealthcheckCmd struct {
	URL     string        `arg:"" name:"url" help:"Endpoint to GET, e.g. http://127.0.0.1:8780/readyz."`
	Timeout time.Duration `name:"timeout" env:"SCRIBEQ_HEALTHCHECK_TIMEOUT" default:"3s" help:"Give up after this long (keep it below the healthcheck's own timeout)."`
}

func (c *HealthcheckCmd) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No keep-alive: one probe, one connection, nothing left half-open in
	// the server between probes.
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	// The body goes to the healthcheck log (docker inspect shows it): the
	// ingress's /readyz says why it is not ready.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("healthcheck: GET %s: %s: %s", c.URL, resp.Status, msg)
	}
	fmt.Println(msg)
	return nil
}
