// Package pipeline runs every scribeq worker in one process — embedded NATS,
// ingress, submitter, sink and, without an API key, the emulator — for
// `scribeq dev`, `scribeq demo` and the end-to-end tests. In production each
// worker runs as its own process; this is the same code wired together.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/ingress"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/natsembed"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/reconciler"
	"github.com/scribeq/scribeq/pkg/sink"
	"github.com/scribeq/scribeq/pkg/slots"
	"github.com/scribeq/scribeq/pkg/store"
	"github.com/scribeq/scribeq/pkg/submitter"
)

// Config configures the whole pipeline.
type Config struct {
	// NatsURL of an existing server; empty starts an embedded one under DataDir.
	NatsURL string
	// NatsPort the embedded server listens on, so other commands can reach
	// it. Default 4222; -1 picks a free port.
	NatsPort int
	// DataDir holds the embedded server's storage. Required without NatsURL.
	DataDir string
	// DatabaseURL of Postgres. Required.
	DatabaseURL string
	// NoMigrate skips migrating the schema at start.
	NoMigrate bool
	// APIKey for ElevenLabs; empty runs the emulator instead.
	APIKey string
	// BaseURL of the ElevenLabs API. Default https://api.elevenlabs.io.
	BaseURL string
	// IngressAddr is where webhooks are received. Default 127.0.0.1:8780.
	IngressAddr string
	// WebhookPath of the ingress. Default /webhooks/elevenlabs.
	WebhookPath string
	// WebhookSecrets; with the emulator a random one is made when empty.
	WebhookSecrets []string
	// EmulatorAddr is where the emulator listens. Default 127.0.0.1:8790.
	EmulatorAddr string
	// EmulatorDelay before each webhook. Default 200ms.
	EmulatorDelay time.Duration
	// EmulatorFaults are injected by the emulator (tests and demos of
	// failure handling); EmulatorSeed makes them repeatable.
	EmulatorFaults emulator.Faults
	EmulatorSeed   uint64
	// InDoubtGrace of the submitter (default 15 minutes).
	InDoubtGrace time.Duration
	// Concurrency of the submitter. Default 4.
	Concurrency int
	// MaxConcurrent is the shared ElevenLabs concurrency limit; 0 turns it off.
	MaxConcurrent int
	// ReconcileInterval is how often stuck jobs are looked for. Default 1 minute.
	ReconcileInterval time.Duration
	// ReconcileMinAge is how long a job waits for its webhook before it is
	// fetched instead. Default 15 minutes.
	ReconcileMinAge time.Duration
	// Queue settings.
	Queue queue.Config
	// Metrics receives every worker's metrics, served on the ingress's
	// port at /metrics; nil records none.
	Metrics *metrics.Registry
	// Logger; default discard.
	Logger *slog.Logger
}

// Pipeline is a running pipeline.
type Pipeline struct {
	NatsURL     string
	IngressURL  string // the webhook endpoint
	EmulatorURL string // empty with a real API key
	MetricsURL  string // empty without Config.Metrics
	Queue       *queue.Queue
	Emulator    *emulator.Server

	log       *slog.Logger
	ns        *server.Server
	st        *store.Store
	ingress   *http.Server
	emuServer *http.Server
	handler   *ingress.Ingress
	db        *query.DB
	stopRec   context.CancelFunc
	recDone   chan error
	stopSub   context.CancelFunc
	stopSink  context.CancelFunc
	subDone   chan error
	sinkDone  chan error
	stopOnce  sync.Once
	stopErr   error
}

// Start brings everything up and returns once it is accepting work.
func Start(ctx context.Context, cfg Config) (p *Pipeline, err error) {
	if cfg.DatabaseURL == "" {
		return nil, errors.New("pipeline: DatabaseURL is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IngressAddr == "" {
		cfg.IngressAddr = "127.0.0.1:8780"
	}
	if cfg.EmulatorAddr == "" {
		cfg.EmulatorAddr = "127.0.0.1:8790"
	}
	if cfg.WebhookPath == "" {
		cfg.WebhookPath = "/webhooks/elevenlabs"
	}
	if cfg.EmulatorDelay == 0 {
		cfg.EmulatorDelay = 200 * time.Millisecond
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.elevenlabs.io"
	}
	log := cfg.Logger
	p = &Pipeline{log: log}
	defer func() {
		if err != nil {
			_ = p.Stop(context.Background())
		}
	}()

	p.NatsURL = cfg.NatsURL
	if p.NatsURL == "" {
		if cfg.DataDir == "" {
			return p, errors.New("pipeline: DataDir is required for the embedded NATS server")
		}
		p.ns, err = natsembed.Start(natsembed.Config{
			StoreDir: filepath.Join(cfg.DataDir, "nats"), Port: cfg.NatsPort, Logger: log.With("process", "nats"),
		})
		if err != nil {
			return p, err
		}
		p.NatsURL = p.ns.ClientURL()
	}
	if !cfg.NoMigrate {
		if err := store.Migrate(ctx, cfg.DatabaseURL, "up", nil); err != nil {
			return p, err
		}
	}
	if p.st, err = store.Open(ctx, cfg.DatabaseURL, log.With("process", "sink")); err != nil {
		return p, err
	}
	nc, err := queue.Connect(p.NatsURL, "scribeq-dev", log)
	if err != nil {
		return p, err
	}
	qcfg := cfg.Queue
	qcfg.Logger = log
	if p.Queue, err = queue.Open(ctx, nc, qcfg); err != nil {
		nc.Close()
		return p, err
	}

	// Listen first so the emulator knows where to send webhooks.
	ingLn, err := net.Listen("tcp", cfg.IngressAddr)
	if err != nil {
		return p, fmt.Errorf("pipeline: ingress listen on %s: %w", cfg.IngressAddr, err)
	}
	p.IngressURL = "http://" + ingLn.Addr().String() + cfg.WebhookPath
	secrets := cfg.WebhookSecrets
	apiKey, baseURL := cfg.APIKey, cfg.BaseURL
	if apiKey == "" {
		if len(secrets) == 0 {
			secrets = []string{randomHex(16)}
		}
		p.Emulator, err = emulator.New(emulator.Config{
			WebhookURL: p.IngressURL, WebhookSecret: secrets[0], WebhookDelay: cfg.EmulatorDelay,
			Faults: cfg.EmulatorFaults, Seed: cfg.EmulatorSeed, Logger: log.With("process", "emulator"),
		})
		if err != nil {
			_ = ingLn.Close()
			return p, err
		}
		emuLn, err := net.Listen("tcp", cfg.EmulatorAddr)
		if err != nil {
			_ = ingLn.Close()
			return p, fmt.Errorf("pipeline: emulator listen on %s: %w", cfg.EmulatorAddr, err)
		}
		p.EmulatorURL = "http://" + emuLn.Addr().String()
		p.emuServer = &http.Server{Handler: p.Emulator.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = p.emuServer.Serve(emuLn) }()
		apiKey, baseURL = "emulator", p.EmulatorURL
		log.Info("no ELEVENLABS_API_KEY: using the emulator", "url", p.EmulatorURL)
	}
	// Webhooks that cannot reach NATS wait in a spool beside its store;
	// without a data folder there is none and they are answered 503.
	spoolDir := ""
	if cfg.DataDir != "" {
		spoolDir = filepath.Join(cfg.DataDir, "ingress-spool")
	}
	h, err := ingress.New(p.Queue, ingress.Config{
		Path: cfg.WebhookPath, Secrets: secrets, Logger: log.With("process", "ingress"), SpoolDir: spoolDir,
		Metrics: cfg.Metrics,
	})
	if err != nil {
		_ = ingLn.Close()
		return p, err
	}
	p.handler = h
	p.ingress = ingress.NewServer(ingLn.Addr().String(), h)
	if cfg.Metrics != nil {
		p.MetricsURL = "http://" + ingLn.Addr().String() + "/metrics"
		cfg.Metrics.WatchConsumers(p.Queue.JS,
			metrics.ConsumerRef{Stream: event.StreamJobs, Consumer: queue.ConsumerSubmitter},
			metrics.ConsumerRef{Stream: event.StreamEvents, Consumer: queue.ConsumerSink})
	}
	go func() { _ = p.ingress.Serve(ingLn) }()

	api, err := elevenlabs.New(elevenlabs.Config{BaseURL: baseURL, APIKey: apiKey})
	if err != nil {
		return p, err
	}
	var lim *slots.Limiter
	if cfg.MaxConcurrent > 0 {
		lim = slots.New(p.Queue.Slots, slots.Config{Max: cfg.MaxConcurrent, Logger: log.With("process", "submitter")})
	}
	sub, err := submitter.New(p.Queue, api, submitter.Config{
		Concurrency: cfg.Concurrency, Slots: lim, InDoubtGrace: cfg.InDoubtGrace, Logger: log.With("process", "submitter"),
		Metrics: cfg.Metrics.Submitter(),
	})
	if err != nil {
		return p, err
	}
	snk, err := sink.New(p.Queue, p.st, sink.Config{Metrics: cfg.Metrics.Sink(), Logger: log.With("process", "sink")})
	if err != nil {
		return p, err
	}
	var subCtx, sinkCtx context.Context
	if p.db, err = query.Open(ctx, cfg.DatabaseURL); err != nil {
		return p, err
	}
	rec, err := reconciler.New(p.db, p.Queue, api, reconciler.Config{
		Interval: cfg.ReconcileInterval, MinAge: cfg.ReconcileMinAge, Logger: log.With("process", "reconciler"),
		Metrics: cfg.Metrics.Reconciler(),
	})
	if err != nil {
		return p, err
	}
	var recCtx context.Context
	recCtx, p.stopRec = context.WithCancel(context.WithoutCancel(ctx))
	p.recDone = make(chan error, 1)
	go func() { p.recDone <- rec.Run(recCtx) }()
	subCtx, p.stopSub = context.WithCancel(context.WithoutCancel(ctx))
	sinkCtx, p.stopSink = context.WithCancel(context.WithoutCancel(ctx))
	p.subDone, p.sinkDone = make(chan error, 1), make(chan error, 1)
	go func() { p.subDone <- sub.Run(subCtx) }()
	go func() { p.sinkDone <- snk.Run(sinkCtx) }()
	log.Info("pipeline running", "nats", p.NatsURL, "ingress", p.IngressURL)
	return p, nil
}

// Stop shuts down in dependency order: no new convert calls, pending
// webhooks delivered and stored, the sink's last batch committed, then NATS.
// DB is the pipeline's read pool on Postgres (the reconciler's), for
// readers in the same process such as dev's console; Stop closes it.
func (p *Pipeline) DB() *query.DB { return p.db }

func (p *Pipeline) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		var errs []error
		if p.stopSub != nil {
			p.stopSub()
			errs = append(errs, <-p.subDone)
		}
		if p.stopRec != nil {
			p.stopRec()
			errs = append(errs, <-p.recDone)
		}
		if p.Emulator != nil {
			errs = append(errs, p.Emulator.Close(ctx))
		}
		if p.emuServer != nil {
			errs = append(errs, p.emuServer.Shutdown(ctx))
		}
		if p.ingress != nil {
			errs = append(errs, p.ingress.Shutdown(ctx))
		}
		if p.handler != nil {
			errs = append(errs, p.handler.Close())
		}
		if p.stopSink != nil {
			p.stopSink()
			errs = append(errs, <-p.sinkDone)
		}
		if p.Queue != nil {
			p.Queue.Close()
		}
		if p.st != nil {
			p.st.Close()
		}
		if p.db != nil {
			p.db.Close()
		}
		if p.ns != nil {
			p.ns.Shutdown()
			p.ns.WaitForShutdown()
		}
		p.stopErr = errors.Join(errs...)
	})
	return p.stopErr
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
