package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/metrics/metricstest"
	"github.com/scribeq/scribeq/pkg/natstest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// The submitter command serves its metrics and probes on --metrics-addr,
// reports its consumer's backlog, goes unready without NATS, and closes
// the port when it stops.
func TestSubmitterServesMetricsAndProbes(t *testing.T) {
	ns := natstest.Server(t)
	addr := freeAddr(t)
	base := "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--data-dir", t.TempDir(), "--log-level", "warn", "submitter",
			"--nats-url", ns.ClientURL(), "--api-key", "k", "--concurrency", "3", "--metrics-addr", addr})
	}()
	require.Eventually(t, func() bool { return status(base+"/readyz") == http.StatusOK }, 30*time.Second, 20*time.Millisecond)

	consumer := []string{"stream", "JOBS", "consumer", "submitter"}
	require.Eventually(t, func() bool {
		v, _ := metricstest.Sum(t, metricstest.Scrape(t, base+"/metrics"), "scribeq_consumer_info_up", consumer...)
		return v == 1 // the consumer exists once Run has made it
	}, 30*time.Second, 100*time.Millisecond)
	g := metricstest.Scrape(t, base+"/metrics")
	require.Equal(t, 3.0, metricstest.Value(t, g, "scribeq_submitter_convert_concurrency"))
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_consumer_pending_messages", consumer...))
	require.Equal(t, 10.0, metricstest.Value(t, g, "scribeq_slots_limit"), "--max-concurrent's default")

	ns.Shutdown()
	ns.WaitForShutdown()
	require.Eventually(t, func() bool { return status(base+"/readyz") == http.StatusServiceUnavailable }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusOK, status(base+"/healthz"))

	cancel()
	select {
	case code := <-exit:
		require.Equal(t, 0, code)
	case <-time.After(90 * time.Second):
		t.Fatal("the submitter did not stop")
	}
	require.Zero(t, status(base+"/healthz"), "the server stopped with the process")
}

// An empty --metrics-addr serves nothing.
func TestMetricsAddrEmptyServesNothing(t *testing.T) {
	var c SubmitterCmd
	c.MetricsAddr = ""
	m, err := c.startMetrics(context.Background(), nil)
	require.NoError(t, err)
	require.Nil(t, m.reg)
	require.Nil(t, m.srv)
	m.stop()
}
