package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/reconciler"
)

// ReconcilerFlags configure the reconciler.
type ReconcilerFlags struct {
	Interval    time.Duration `name:"interval" env:"SCRIBEQ_RECONCILE_INTERVAL" default:"1m" help:"Time between rounds."`
	MinAge      time.Duration `name:"min-age" env:"SCRIBEQ_RECONCILE_MIN_AGE" default:"15m" help:"A job is fetched once it has been submitted this long, or Factor times ElevenLabs' processing estimate (0.3 s per audio second + 2 s) if that is longer."`
	Factor      float64       `name:"factor" env:"SCRIBEQ_RECONCILE_FACTOR" default:"3" help:"Safety margin over ElevenLabs' processing estimate."`
	LostAfter   time.Duration `name:"lost-after" env:"SCRIBEQ_RECONCILE_LOST_AFTER" default:"2h" help:"A job whose transcript ElevenLabs still does not know this long after submission (longer for long audio) is failed as lost."`
	Concurrency int           `name:"get-concurrency" env:"SCRIBEQ_RECONCILE_CONCURRENCY" default:"4" help:"GET transcript calls in flight at once."`
	BatchSize   int           `name:"batch-size" env:"SCRIBEQ_RECONCILE_BATCH" default:"500" help:"Most stuck jobs looked at per round (the next round carries on)."`
	Unhealthy   int           `name:"unhealthy-recovered" env:"SCRIBEQ_RECONCILE_UNHEALTHY" default:"3" help:"Transcripts recovered in one round that mean webhooks are not arriving (logged as an error)."`
}

func (f ReconcilerFlags) reconcilerConfig(log *slog.Logger) reconciler.Config {
	return reconciler.Config{
		Interval: f.Interval, MinAge: f.MinAge, Factor: f.Factor, LostAfter: f.LostAfter,
		Concurrency: f.Concurrency, BatchSize: f.BatchSize, UnhealthyRecovered: f.Unhealthy, Logger: log,
	}
}

// ReconcilerCmd runs the reconciler: it recovers transcripts whose webhook
// never arrived and fails jobs ElevenLabs lost. One replica is enough.
type ReconcilerCmd struct {
	QueueFlags      `embed:""`
	APIFlags        `embed:""`
	DBFlags         `embed:""`
	ReconcilerFlags `embed:""`
	MetricsFlags    `embed:""`
	Once            bool `name:"once" help:"Do one round, print its counts as JSON and exit (serves no metrics)."`
}

func (c *ReconcilerCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger().With("process", "reconciler")
	if c.APIKey == "" {
		return errors.New("reconciler: ELEVENLABS_API_KEY (or --api-key) is required; for a local run point --base-url at 'scribeq emulator'")
	}
	api, err := elevenlabs.New(elevenlabs.Config{BaseURL: c.BaseURL, APIKey: c.APIKey})
	if err != nil {
		return err
	}
	if c.Once {
		c.MetricsAddr = ""
	}
	m, err := c.startMetrics(ctx, log)
	if err != nil {
		return err
	}
	defer m.stop()
	// Read-only: the reconciler never writes Postgres; the sink applies
	// what it publishes.
	db, err := openQuery(ctx, g, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	q, err := openQueue(ctx, g, c.QueueFlags, "scribeq-reconciler", log)
	if err != nil {
		return err
	}
	defer q.Close()
	m.srv.SetChecks(metrics.NATSCheck(q.NC))
	cfg := c.reconcilerConfig(log)
	cfg.Metrics = m.reg.Reconciler()
	r, err := reconciler.New(db, q, api, cfg)
	if err != nil {
		return err
	}
	if c.Once {
		res, err := r.Round(ctx)
		if err != nil {
			return err
		}
		return printJSON(res)
	}
	return r.Run(ctx)
}
