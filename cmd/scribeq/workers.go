package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/ingress"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/sink"
	"github.com/scribeq/scribeq/pkg/slots"
	"github.com/scribeq/scribeq/pkg/store"
	"github.com/scribeq/scribeq/pkg/submitter"
)

// QueueFlags are the stream settings every NATS-using command shares.
type QueueFlags struct {
	Replicas        int   `name:"replicas" env:"SCRIBEQ_REPLICAS" default:"1" help:"Replicas per stream and bucket (3 on a NATS cluster)."`
	ClaimCheckBytes int64 `name:"claim-check-bytes" env:"SCRIBEQ_CLAIM_CHECK_BYTES" default:"524288" help:"Events larger than this travel through the object store by reference."`
}

func (f QueueFlags) config(log *slog.Logger) queue.Config {
	return queue.Config{Replicas: f.Replicas, ClaimCheckBytes: int(f.ClaimCheckBytes), Logger: log}
}

func openQueue(ctx context.Context, g *Globals, f QueueFlags, name string, log *slog.Logger) (*queue.Queue, error) {
	nc, err := queue.Connect(g.natsURL(), name, log)
	if err != nil {
		return nil, err
	}
	// A NATS server that is restarting or overloaded answers late; a worker
	// started then waits for it rather than exiting.
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		q, err := queue.Open(ctx, nc, f.config(log))
		if err == nil {
			return q, nil
		}
		if ctx.Err() != nil || !queue.Transient(err) {
			nc.Close()
			return nil, err
		}
		log.Warn("NATS not ready; trying again", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, err
		case <-time.After(wait):
		}
	}
}

// APIFlags configure the ElevenLabs client.
type APIFlags struct {
	APIKey    string `name:"api-key" env:"ELEVENLABS_API_KEY" placeholder:"KEY" help:"ElevenLabs API key (never logged)."`
	BaseURL   string `name:"base-url" env:"ELEVENLABS_BASE_URL" default:"https://api.elevenlabs.io" help:"ElevenLabs API base URL (point it at 'scribeq emulator' to test)."`
	WebhookID string `name:"webhook-id" env:"SCRIBEQ_WEBHOOK_ID" help:"Send results to this configured webhook only (default: every speech-to-text webhook of the workspace)."`
}

// SubmitterFlags configure the submitter worker.
type SubmitterFlags struct {
	Concurrency   int           `name:"concurrency" env:"SCRIBEQ_CONCURRENCY" default:"4" help:"Convert calls in flight at once in this process."`
	MaxAttempts   int           `name:"max-attempts" env:"SCRIBEQ_MAX_ATTEMPTS" default:"8" help:"Deliveries of a job for transient errors (429, 5xx, network) before it fails."`
	MaxConcurrent int           `name:"max-concurrent" env:"SCRIBEQ_MAX_CONCURRENT" default:"10" help:"Your ElevenLabs plan's concurrency (Free 10, Starter 15, Creator 25, Pro 50, Scale/Business 75), shared by every submitter; 0 turns the shared limit off."`
	Grace         time.Duration `name:"in-doubt-grace" env:"SCRIBEQ_IN_DOUBT_GRACE" default:"15m" help:"How long a job whose convert call went unanswered waits for its webhook before it is sent again."`
}

func (f SubmitterFlags) limiter(q *queue.Queue, log *slog.Logger) *slots.Limiter {
	if f.MaxConcurrent <= 0 {
		return nil
	}
	return slots.New(q.Slots, slots.Config{Max: f.MaxConcurrent, Logger: log})
}

// SubmitterCmd runs the submitter worker.
type SubmitterCmd struct {
	QueueFlags     `embed:""`
	APIFlags       `embed:""`
	SubmitterFlags `embed:""`
	MetricsFlags   `embed:""`
}

func (c *SubmitterCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger().With("process", "submitter")
	if c.APIKey == "" {
		return errors.New("submitter: ELEVENLABS_API_KEY (or --api-key) is required; for a local run use 'scribeq dev' or point --base-url at 'scribeq emulator'")
	}
	api, err := elevenlabs.New(elevenlabs.Config{BaseURL: c.BaseURL, APIKey: c.APIKey})
	if err != nil {
		return err
	}
	m, err := c.startMetrics(ctx, log)
	if err != nil {
		return err
	}
	defer m.stop()
	q, err := openQueue(ctx, g, c.QueueFlags, "scribeq-submitter", log)
	if err != nil {
		return err
	}
	defer q.Close()
	m.srv.SetChecks(metrics.NATSCheck(q.NC))
	m.reg.WatchConsumers(q.JS, metrics.ConsumerRef{Stream: event.StreamJobs, Consumer: queue.ConsumerSubmitter})
	s, err := submitter.New(q, api, submitter.Config{
		Concurrency: c.Concurrency, MaxAttempts: c.MaxAttempts, InDoubtGrace: c.Grace, WebhookID: c.WebhookID, Logger: log,
		Slots: c.limiter(q, log), Metrics: m.reg.Submitter(),
	})
	if err != nil {
		return err
	}
	log.Info("submitter running", "concurrency", c.Concurrency, "base_url", c.BaseURL)
	return s.Run(ctx)
}

// IngressFlags configure the webhook endpoint.
type IngressFlags struct {
	Addr           string        `name:"addr" env:"SCRIBEQ_INGRESS_ADDR" default:":8780" help:"Address the webhook endpoint listens on."`
	Path           string        `name:"path" env:"SCRIBEQ_WEBHOOK_PATH" default:"/webhooks/elevenlabs" help:"Path of the webhook endpoint."`
	WebhookSecrets []string      `name:"webhook-secrets" env:"SCRIBEQ_WEBHOOK_SECRETS" sep:"," placeholder:"SECRETS" help:"Webhook signing secrets, comma-separated (two during rotation; never logged)."`
	MaxBodyBytes   int64         `name:"max-body-bytes" env:"SCRIBEQ_MAX_BODY_BYTES" default:"67108864" help:"Largest webhook body accepted."`
	Tolerance      time.Duration `name:"signature-tolerance" env:"SCRIBEQ_SIGNATURE_TOLERANCE" default:"30m" help:"Oldest signature timestamp accepted."`
	PublishTimeout time.Duration `name:"publish-timeout" env:"SCRIBEQ_PUBLISH_TIMEOUT" default:"15s" help:"How long a webhook waits for NATS before it is spooled (or, without a spool, answered 503)."`

	SpoolDir      string        `name:"spool-dir" env:"SCRIBEQ_SPOOL_DIR" placeholder:"DIR" help:"Where verified webhooks wait, fsynced, while NATS is unreachable (default: <data-dir>/ingress-spool)."`
	NoSpool       bool          `name:"no-spool" env:"SCRIBEQ_NO_SPOOL" help:"Answer 503 instead of spooling when NATS is unreachable (the webhook is then lost until the reconciler finds it)."`
	SpoolMaxBytes int64         `name:"spool-max-bytes" env:"SCRIBEQ_SPOOL_MAX_BYTES" default:"1073741824" help:"Disk the spool may use; beyond it webhooks are answered 503 while NATS is down."`
	SpoolRetry    time.Duration `name:"spool-retry" env:"SCRIBEQ_SPOOL_RETRY" default:"1s" help:"How often spooled webhooks are offered to NATS again (doubling on failure up to 30s)."`

	RateLimit      float64  `name:"rate-limit" env:"SCRIBEQ_RATE_LIMIT" default:"100" help:"Requests per second per client IP, checked before the signature (-1 disables). ElevenLabs never retries a webhook it got 429 for."`
	RateBurst      int      `name:"rate-burst" env:"SCRIBEQ_RATE_BURST" default:"200" help:"Requests a client may send at once before the rate limit applies."`
	TrustedProxies []string `name:"trusted-proxies" env:"SCRIBEQ_TRUSTED_PROXIES" sep:"," placeholder:"CIDRS" help:"Reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For (else X-Real-IP) names the client for the rate limit and the logs; from anyone else those headers are ignored."`

	ReadHeaderTimeout time.Duration `name:"read-header-timeout" env:"SCRIBEQ_READ_HEADER_TIMEOUT" default:"10s" help:"Time allowed to read a request's headers."`
	ReadTimeout       time.Duration `name:"read-timeout" env:"SCRIBEQ_READ_TIMEOUT" default:"5m" help:"Time allowed to read a whole request, body included."`
	WriteTimeout      time.Duration `name:"write-timeout" env:"SCRIBEQ_WRITE_TIMEOUT" default:"5m" help:"Time allowed to handle and answer a request (keep it above --publish-timeout)."`
	IdleTimeout       time.Duration `name:"idle-timeout" env:"SCRIBEQ_IDLE_TIMEOUT" default:"2m" help:"Idle keep-alive connections are closed after this."`
	MaxHeaderBytes    int           `name:"max-header-bytes" env:"SCRIBEQ_MAX_HEADER_BYTES" default:"65536" help:"Largest request header block accepted."`
}

// IngressCmd runs the webhook ingress.
type IngressCmd struct {
	QueueFlags   `embed:""`
	IngressFlags `embed:""`
	TLSFlags     `embed:""`
}

func (c *IngressCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger().With("process", "ingress")
	// Before NATS: a TLS mistake should fail at once, not after a wait.
	tlsSetup, err := ingress.NewTLS(c.TLSFlags.config(g.DataDir, log))
	if err != nil {
		return err
	}
	q, err := openQueue(ctx, g, c.QueueFlags, "scribeq-ingress", log)
	if err != nil {
		return err
	}
	defer q.Close()
	cfg := c.ingressConfig(g.DataDir, log)
	cfg.Metrics = metrics.NewRegistry() // served on the ingress's own port, at /metrics
	h, err := ingress.New(q, cfg)
	if err != nil {
		return err
	}
	// Deferred after q.Close, so it runs first: the replay loop stops
	// before the connection it publishes on is drained.
	defer func() {
		if err := h.Close(); err != nil {
			log.Warn("closing the spool", "err", err)
		}
	}()
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("ingress: listen on %s: %w", c.Addr, err)
	}
	log.Info("ingress listening", "addr", ln.Addr().String(), "path", c.Path, "spool_dir", cfg.SpoolDir,
		"tls", c.tlsMode(), "trusted_proxies", c.TrustedProxies, "webhook_secrets", len(cfg.Secrets))
	return c.serveIngress(ctx, c.serverConfig(log).Server(c.Addr, h), ln, tlsSetup, log)
}

func (c *IngressFlags) ingressConfig(dataDir string, log *slog.Logger) ingress.Config {
	spoolDir := c.SpoolDir
	switch {
	case c.NoSpool:
		spoolDir = ""
	case spoolDir == "":
		spoolDir = filepath.Join(dataDir, "ingress-spool")
	}
	return ingress.Config{
		Path: c.Path, Secrets: splitSecrets(c.WebhookSecrets), MaxBodyBytes: c.MaxBodyBytes,
		Tolerance: c.Tolerance, PublishTimeout: c.PublishTimeout, Logger: log,
		SpoolDir: spoolDir, SpoolMaxBytes: c.SpoolMaxBytes, SpoolRetry: c.SpoolRetry,
		RateLimit: c.RateLimit, RateBurst: c.RateBurst, TrustedProxies: c.TrustedProxies,
	}
}

func (c *IngressFlags) serverConfig(log *slog.Logger) ingress.ServerConfig {
	return ingress.ServerConfig{
		ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout,
		IdleTimeout: c.IdleTimeout, MaxHeaderBytes: c.MaxHeaderBytes, Logger: log,
	}
}

// serve runs srv until ctx ends, then lets in-flight requests finish. With
// srv.TLSConfig set it serves HTTPS, taking certificates from that config.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	return nil
}

// DBFlags name the database.
type DBFlags struct {
	DatabaseURL string `name:"database-url" env:"DATABASE_URL" placeholder:"URL" help:"Postgres URL (default: the database 'scribeq dev' runs)."`
}

// SinkCmd runs the sink worker.
type SinkCmd struct {
	QueueFlags   `embed:""`
	DBFlags      `embed:""`
	MetricsFlags `embed:""`
	NoMigrate    bool `name:"no-migrate" env:"SCRIBEQ_NO_MIGRATE" help:"Do not migrate the schema at start."`
	BatchSize    int  `name:"batch-size" env:"SCRIBEQ_SINK_BATCH" default:"500" help:"Events applied per transaction."`
}

func (c *SinkCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger().With("process", "sink")
	url, err := g.databaseURL(c.DatabaseURL)
	if err != nil {
		return err
	}
	m, err := c.startMetrics(ctx, log)
	if err != nil {
		return err
	}
	defer m.stop()
	if !c.NoMigrate {
		if err := store.Migrate(ctx, url, "up", nil); err != nil {
			return err
		}
	}
	st, err := store.Open(ctx, url, log)
	if err != nil {
		return err
	}
	defer st.Close()
	q, err := openQueue(ctx, g, c.QueueFlags, "scribeq-sink", log)
	if err != nil {
		return err
	}
	defer q.Close()
	m.srv.SetChecks(metrics.NATSCheck(q.NC), metrics.PingCheck("postgres", st.Pool().Ping))
	m.reg.WatchConsumers(q.JS, metrics.ConsumerRef{Stream: event.StreamEvents, Consumer: queue.ConsumerSink})
	s, err := sink.New(q, st, sink.Config{BatchSize: c.BatchSize, Metrics: m.reg.Sink(), Logger: log})
	if err != nil {
		return err
	}
	log.Info("sink running")
	return s.Run(ctx)
}

// MigrateCmd runs schema migrations.
type MigrateCmd struct {
	DBFlags `embed:""`
	Command string `arg:"" enum:"up,down,status" default:"up" help:"up (apply all), down (roll back one), status."`
}

func (c *MigrateCmd) Run(ctx context.Context, g *Globals) error {
	url, err := g.databaseURL(c.DatabaseURL)
	if err != nil {
		return err
	}
	return store.Migrate(ctx, url, c.Command, os.Stdout)
}
