package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/scribeq/scribeq/pkg/metrics"
)

// MetricsFlags configure a worker's metrics and health server. The ingress
// has none: it serves the same paths on its own port.
type MetricsFlags struct {
	MetricsAddr string `name:"metrics-addr" env:"SCRIBEQ_METRICS_ADDR" default:":9090" help:"Where /metrics (Prometheus), /healthz and /readyz are served; empty serves nothing."`
}

// workerMetrics is a worker's registry and the server that exposes it;
// both nil when --metrics-addr is empty, which the metrics package takes
// as "record nothing".
type workerMetrics struct {
	reg *metrics.Registry
	srv *metrics.Server
	log *slog.Logger
}

// startMetrics serves the worker's metrics and probes before it connects
// to anything, so that a worker waiting for NATS answers /healthz (alive)
// and /readyz ("starting", 503) instead of failing its liveness probe.
func (f MetricsFlags) startMetrics(ctx context.Context, log *slog.Logger) (*workerMetrics, error) {
	w := &workerMetrics{log: log}
	if f.MetricsAddr == "" {
		return w, nil
	}
	w.reg = metrics.NewRegistry()
	srv, err := metrics.Start(f.MetricsAddr, w.reg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // told to stop anyway: not a failure
		}
		return nil, err
	}
	w.srv = srv
	return w, nil
}

// stop shuts the server down after the worker has drained, so probes and
// scrapes are answered until the end.
func (w *workerMetrics) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.srv.Shutdown(ctx); err != nil {
		w.log.Warn("stopping the metrics server", "err", err)
	}
}
