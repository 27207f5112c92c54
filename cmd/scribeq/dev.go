package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/scribeq/scribeq/pkg/localpg"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/pipeline"
)

// DevCmd runs the whole pipeline in one process.
type DevCmd struct {
	DBFlags    `embed:""`
	APIFlags   `embed:""`
	QueueFlags `embed:""`

	NatsPort       int           `name:"nats-port" env:"SCRIBEQ_NATS_PORT" default:"4222" help:"Port of the embedded NATS server, for other commands (-1: any free port)."`
	IngressAddr    string        `name:"ingress-addr" env:"SCRIBEQ_INGRESS_ADDR" default:"127.0.0.1:8780" help:"Where the webhook ingress listens."`
	EmulatorAddr   string        `name:"emulator-addr" env:"SCRIBEQ_EMULATOR_ADDR" default:"127.0.0.1:8790" help:"Where the emulator listens (only without an API key)."`
	EmulatorDelay  time.Duration `name:"emulator-delay" env:"SCRIBEQ_EMULATOR_DELAY" default:"200ms" help:"Emulator processing delay before each webhook."`
	WebhookSecrets []string      `name:"webhook-secrets" env:"SCRIBEQ_WEBHOOK_SECRETS" sep:"," placeholder:"SECRETS" help:"Webhook signing secrets (required with a real API key; random with the emulator)."`
	Concurrency    int           `name:"concurrency" env:"SCRIBEQ_CONCURRENCY" default:"4" help:"Convert calls in flight at once."`
	MaxConcurrent  int           `name:"max-concurrent" env:"SCRIBEQ_MAX_CONCURRENT" default:"10" help:"Your ElevenLabs plan's concurrency; 0 turns the shared limit off."`
	ReconcileEvery time.Duration `name:"reconcile-interval" env:"SCRIBEQ_RECONCILE_INTERVAL" default:"1m" help:"How often the reconciler looks for jobs whose webhook never came."`
	ReconcileAfter time.Duration `name:"reconcile-min-age" env:"SCRIBEQ_RECONCILE_MIN_AGE" default:"15m" help:"How long a job waits for its webhook before the reconciler fetches its transcript."`
	NoMigrate      bool          `name:"no-migrate" env:"SCRIBEQ_NO_MIGRATE" help:"Do not migrate the schema at start."`
	WebAddr        string        `name:"web-addr" env:"SCRIBEQ_WEB_ADDR" default:"127.0.0.1:8080" help:"Where the web console listens ('off': no console)."`
	WebFlags       `embed:"" prefix:"web-"`
}

func (c *DevCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger()
	p, stop, err := c.start(ctx, g, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "scribeq dev is running (Ctrl-C to stop)\n  nats:     %s\n  webhooks: %s\n", p.NatsURL, p.IngressURL)
	if p.EmulatorURL != "" {
		fmt.Fprintf(os.Stderr, "  emulator: %s (no ELEVENLABS_API_KEY set)\n", p.EmulatorURL)
	}
	fmt.Fprintf(os.Stderr, "  metrics:  %s\n", p.MetricsURL)
	link, stopWeb, err := c.devWeb(ctx, p.DB(), p.Queue, log)
	if err != nil {
		return errors.Join(err, stop())
	}
	if link != "" {
		fmt.Fprintf(os.Stderr, "  console:  %s\n", link)
	}
	fmt.Fprintf(os.Stderr, "In another terminal here: scribeq submit <files>; scribeq status\n")
	<-ctx.Done()
	log.Info("stopping")
	stopWeb()
	return stop()
}

// start brings up Postgres (when no URL is given), the pipeline, and the
// connection file other commands read. stop undoes all of it.
func (c *DevCmd) start(ctx context.Context, g *Globals, log *slog.Logger) (*pipeline.Pipeline, func() error, error) {
	if err := os.MkdirAll(g.DataDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("dev: create data folder: %w", err)
	}
	dbURL := c.DatabaseURL
	var cluster *localpg.Cluster
	if dbURL == "" {
		var err error
		cluster, err = startLocalPG(ctx, g.DataDir, log)
		if err != nil {
			return nil, nil, fmt.Errorf("dev: no DATABASE_URL and no local Postgres: %w", err)
		}
		dbURL = cluster.URL
	}
	stopPG := func() error {
		if cluster == nil {
			return nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return cluster.Stop(sctx)
	}
	p, err := pipeline.Start(ctx, pipeline.Config{
		NatsPort:          c.NatsPort,
		DataDir:           g.DataDir,
		DatabaseURL:       dbURL,
		NoMigrate:         c.NoMigrate,
		APIKey:            c.APIKey,
		BaseURL:           c.BaseURL,
		IngressAddr:       c.IngressAddr,
		EmulatorAddr:      c.EmulatorAddr,
		EmulatorDelay:     c.EmulatorDelay,
		WebhookSecrets:    splitSecrets(c.WebhookSecrets),
		Concurrency:       c.Concurrency,
		MaxConcurrent:     c.MaxConcurrent,
		ReconcileInterval: c.ReconcileEvery,
		ReconcileMinAge:   c.ReconcileAfter,
		Queue:             c.QueueFlags.config(log),
		Metrics:           metrics.NewRegistry(),
		Logger:            log,
	})
	if err != nil {
		_ = stopPG()
		return nil, nil, err
	}
	info, _ := json.MarshalIndent(devInfo{
		NatsURL: p.NatsURL, DatabaseURL: dbURL, IngressURL: p.IngressURL, EmulatorURL: p.EmulatorURL, PID: os.Getpid(),
	}, "", "  ")
	if err := os.WriteFile(g.devInfoPath(), info, 0o600); err != nil {
		log.Warn("could not write the connection file", "path", g.devInfoPath(), "err", err)
	}
	stop := func() error {
		_ = os.Remove(g.devInfoPath())
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err := p.Stop(sctx)
		if perr := stopPG(); perr != nil && err == nil {
			err = perr
		}
		return err
	}
	return p, stop, nil
}

// startLocalPG starts the throwaway cluster under the data folder or, when
// the postgres OS user cannot reach it (a checkout under /root, as root),
// under the temp folder, in a folder named after the data folder, so that a second
// run finds the same cluster again.
func startLocalPG(ctx context.Context, dataDir string, log *slog.Logger) (*localpg.Cluster, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("dev: data folder: %w", err)
	}
	dir := filepath.Join(abs, "pg")
	log.Info("no DATABASE_URL: starting a local Postgres cluster", "dir", dir)
	c, err := localpg.Start(ctx, dir, log.With("process", "postgres"))
	if !errors.Is(err, localpg.ErrUnreachableDir) {
		return c, err
	}
	sum := sha256.Sum256([]byte(abs))
	dir = filepath.Join(os.TempDir(), "scribeq-"+hex.EncodeToString(sum[:6]), "pg")
	log.Info("the postgres user cannot reach the data folder; using another", "dir", dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	return localpg.Start(ctx, dir, log.With("process", "postgres"))
}
