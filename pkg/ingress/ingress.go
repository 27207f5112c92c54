// Package ingress receives ElevenLabs' speech-to-text webhooks. It verifies
// the signature on the raw bytes before parsing anything, publishes a
// `completed` event, and answers 200 only after JetStream has acknowledged
// it or, when NATS is unreachable, after the event is fsynced to a local
// spool (pkg/spool): ElevenLabs sends each webhook once, so a 200 is a
// promise that the transcript is safely stored. It answers 503 only when
// neither works.
//
// With a spool, New starts a background loop that publishes spooled events
// once NATS is reachable again (same message id, through
// queue.PublishEvent, so large events still use the claim check); Close
// stops it and releases the spool. Call Close after the HTTP server has
// shut down. Spooled events survive a crash and are replayed by the next
// process that opens the same SpoolDir.
//
// Every request except /healthz, /readyz and /metrics passes a per-client token
// bucket before its body is read or its signature checked, so a flood of
// forged requests costs little.
package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/spool"
)

// Config configures the webhook handler.
type Config struct {
	// Path of the webhook endpoint. Default "/webhooks/elevenlabs".
	Path string
	// Secrets are the webhook signing secrets; more than one during rotation. Required.
	Secrets []string
	// MaxBodyBytes caps a webhook body. Default 64 MiB: an hour of speech is
	// about 1 MB of word JSON, more with character timestamps or exports.
	MaxBodyBytes int64
	// Tolerance is how old a signature may be. Default 30 minutes.
	Tolerance time.Duration
	// FutureSkew is how far ahead a signature's timestamp may be. Default 5 minutes.
	FutureSkew time.Duration
	// PublishTimeout bounds storing the event before answering 503. Default 15s.
	PublishTimeout time.Duration
	// Process names this worker in events. Default "ingress".
	Process string
	// SpoolDir holds verified webhooks while NATS is unreachable (the
	// commands default it to <data-dir>/ingress-spool). Empty disables
	// spooling: a webhook that cannot be published is answered 503.
	SpoolDir string
	// SpoolMaxBytes caps the spool on disk; a webhook that does not fit
	// while NATS is down is answered 503. Default 1 GiB.
	SpoolMaxBytes int64
	// SpoolRetry is how often a non-empty spool is offered to NATS again,
	// doubling after each failure up to 30s. Default 1s.
	SpoolRetry time.Duration
	// RateLimit is the requests per second each client IP (IPv6: each /64)
	// may make without a valid signature, checked before the body is read.
	// Default 100; -1 disables. Correctly signed webhooks are not counted:
	// ElevenLabs sends from few addresses and never retries an STT webhook,
	// so a 429 to a genuine delivery would lose it.
	RateLimit float64
	// RateBurst is how many requests a client may make at once. Default 200.
	RateBurst int
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For (else X-Real-IP) names the client, for the rate limit
	// and the logs. Default none: the TCP peer is the client, and those
	// headers are ignored, since anyone can send them.
	TrustedProxies []string
	// Metrics, when set, receives the ingress's metrics (webhook outcomes,
	// store latency, spool) and is served whole on GET /metrics. Nil: no
	// metrics and no /metrics.
	Metrics *metrics.Registry
	// Logger; default discard.
	Logger *slog.Logger
	// Now is the clock for signature checks; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = "/webhooks/elevenlabs"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 20
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 15 * time.Second
	}
	if c.Process == "" {
		c.Process = "ingress"
	}
	if c.SpoolMaxBytes <= 0 {
		c.SpoolMaxBytes = 1 << 30
	}
	if c.SpoolRetry <= 0 {
		c.SpoolRetry = time.Second
	}
	if c.RateLimit == 0 {
		c.RateLimit = 100
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 200
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if len(c.Secrets) == 0 {
		return errors.New("ingress: Secrets: at least one webhook secret is required (SCRIBEQ_WEBHOOK_SECRETS)")
	}
	for _, s := range c.Secrets {
		if s == "" {
			return errors.New("ingress: Secrets: empty secret")
		}
	}
	if c.RateLimit < 0 && c.RateLimit != -1 {
		return fmt.Errorf("ingress: RateLimit: %v requests per second; want a positive rate, or -1 to disable", c.RateLimit)
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		return fmt.Errorf("ingress: TrustedProxies: %w", err)
	}
	return nil
}

// Ingress is the HTTP handler: the webhook endpoint plus /healthz and /readyz.
type Ingress struct {
	q       *queue.Queue
	cfg     Config
	verify  *elevenlabs.Verifier
	log     *slog.Logger
	mux     *http.ServeMux
	clients clientResolver
	limit   *limiter // nil: no rate limit
	m       *metrics.Ingress

	spool      *spool.Spool // nil: spooling disabled
	stopReplay context.CancelFunc
	replayDone chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

// New returns the handler. With a SpoolDir it opens the spool (taking its
// lock) and starts replaying it in the background: call Close when done.
func New(q *queue.Queue, cfg Config) (*Ingress, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	in := &Ingress{
		q:   q,
		cfg: cfg,
		verify: &elevenlabs.Verifier{
			Secrets: cfg.Secrets, Tolerance: cfg.Tolerance, FutureSkew: cfg.FutureSkew, Now: cfg.Now,
		},
		log: cfg.Logger,
		mux: http.NewServeMux(),
		m:   cfg.Metrics.Ingress(),
	}
	proxies, _ := parsePrefixes(cfg.TrustedProxies) // checked by validate
	in.clients = clientResolver{proxies: proxies}
	if cfg.RateLimit > 0 {
		in.limit = newLimiter(cfg.RateLimit, cfg.RateBurst, in.clients)
	}
	in.mux.HandleFunc("POST "+cfg.Path, in.webhook)
	in.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	in.mux.HandleFunc("GET /readyz", in.ready)
	if cfg.Metrics != nil {
		in.mux.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	if cfg.SpoolDir != "" {
		sp, err := spool.Open(cfg.SpoolDir, spool.Config{MaxBytes: cfg.SpoolMaxBytes, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("ingress: open spool: %w", err)
		}
		in.spool = sp
		in.m.WatchSpool(&metrics.SpoolStats{Pending: sp.Pending, Bytes: sp.Bytes})
		var ctx context.Context
		ctx, in.stopReplay = context.WithCancel(context.Background())
		in.replayDone = make(chan struct{})
		go func() {
			defer close(in.replayDone)
			in.replayLoop(ctx)
		}()
	}
	return in, nil
}

// ServeHTTP rate-limits, then routes. Health probes and metric scrapes
// are exempt: a limited prober would take a healthy ingress out of
// service, and a limited scraper would hide a flood from its graphs.
func (in *Ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if in.limit != nil && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && r.URL.Path != "/metrics" {
		wait, charge, ok := in.limit.allow(r, time.Now())
		if !ok {
			in.m.Delivery(metrics.WebhookRateLimited)
			w.Header().Set("Retry-After", strconv.Itoa(wait))
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "rate limited"})
			return
		}
		genuine := false
		r = r.WithContext(context.WithValue(r.Context(), genuineKey{}, &genuine))
		defer func() {
			if !genuine {
				charge()
			}
		}()
	}
	in.mux.ServeHTTP(w, r)
}

// Close stops the replay loop and closes the spool; spooled events that
// are still pending stay on disk for the next start. Call it after the
// HTTP server has shut down: a webhook arriving later cannot be spooled.
func (in *Ingress) Close() error {
	in.closeOnce.Do(func() {
		if in.spool == nil {
			return
		}
		in.stopReplay()
		<-in.replayDone
		in.closeErr = in.spool.Close()
	})
	return in.closeErr
}

// Ready while events can be stored: NATS is connected, or the spool has
// room. Taking the ingress out of a load balancer while it can spool
// would turn an outage into lost webhooks.
func (in *Ingress) ready(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{"status": "ready"}
	status := http.StatusOK
	if in.spool != nil {
		body["spool_pending"] = in.spool.Pending()
		body["spool_bytes"] = in.spool.Bytes()
		body["spool_max_bytes"] = in.spool.MaxBytes()
	}
	if !in.q.NC.IsConnected() {
		switch {
		case in.spool != nil && in.spool.Bytes() < in.spool.MaxBytes():
			body["status"] = "spooling: nats not connected"
		default:
			body["status"] = "nats not connected"
			status = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, status, body)
}

func (in *Ingress) webhook(w http.ResponseWriter, r *http.Request) {
	log := in.log.With(in.clients.logAttrs(r)...)
	body, err := readBody(w, r, in.cfg.MaxBodyBytes)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			in.m.Delivery(metrics.WebhookTooLarge)
			log.Warn("webhook rejected: body too large", "limit", in.cfg.MaxBodyBytes)
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
			return
		}
		in.m.Delivery(metrics.WebhookUnreadable)
		log.Warn("webhook rejected: reading body", "err", err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "could not read body"})
		return
	}
	if err := in.verify.Verify(r.Header.Get(elevenlabs.SignatureHeader), body); err != nil {
		in.m.Delivery(signatureOutcome(err))
		log.Warn("webhook rejected: signature", "reason", err)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid signature"})
		return
	}
	markGenuine(r) // genuine deliveries never use up the rate limit
	wh, err := elevenlabs.ParseWebhook(body)
	if errors.Is(err, elevenlabs.ErrOtherWebhookType) {
		// Not ours to store, but refusing it would count towards
		// ElevenLabs disabling the whole webhook.
		in.m.Delivery(metrics.WebhookIgnored)
		log.Info("webhook ignored", "reason", err)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored"})
		return
	}
	if err != nil {
		in.m.Delivery(metrics.WebhookMalformed)
		log.Warn("webhook rejected: malformed", "err", err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	ev := &event.Event{
		V:               event.Version,
		Type:            event.TypeCompleted,
		JobID:           elevenlabs.MetadataString(wh.Data.WebhookMetadata, "job_id"),
		RequestID:       wh.Data.RequestID,
		TranscriptionID: transcriptionID(wh.Data.Transcription),
		At:              time.Now().UTC(),
		Process:         in.cfg.Process,
		Transcription:   wh.Data.Transcription,
		WebhookMetadata: wh.Data.WebhookMetadata,
	}
	log = log.With("job_id", ev.JobID, "request_id", ev.RequestID, "transcription_id", ev.TranscriptionID)
	// The sender does not wait for our storage problems: bound them, then
	// spool, and answer 503 only when that fails too so the failure is at
	// least visible on their side.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), in.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	var pubErr error
	marked := make(chan struct{})
	if in.spool != nil && !in.q.NC.IsConnected() {
		// Known down: waiting out PublishTimeout would only risk the
		// sender giving up on us.
		pubErr = errors.New("nats not connected")
	} else {
		// The mark and the event are two fsynced writes; made together
		// they cost one round trip. The mark only says that ElevenLabs
		// accepted the call, which this delivery proves whatever becomes
		// of the event.
		go func() {
			defer close(marked)
			in.markWebhook(ctx, log, ev)
		}()
		pubErr = in.q.PublishEvent(ctx, ev)
	}
	if pubErr != nil {
		if in.spool == nil {
			in.m.Delivery(metrics.WebhookUnavailable)
			log.Error("webhook not stored", "err", pubErr)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "could not store the event"})
			return
		}
		if err := in.spoolEvent(ev); err != nil {
			in.m.Delivery(metrics.WebhookUnavailable)
			log.Error("webhook not stored: publish and spool both failed", "publish_err", pubErr, "spool_err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "could not store the event"})
			return
		}
		in.m.Stored(time.Since(start), true)
		log.Warn("webhook spooled locally: NATS unavailable", "err", pubErr,
			"spool_pending", in.spool.Pending(), "spool_bytes", in.spool.Bytes())
		writeJSON(w, http.StatusOK, map[string]string{"status": "spooled"})
		return
	}
	<-marked
	in.m.Stored(time.Since(start), false)
	log.Info("webhook stored", "bytes", len(body))
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// signatureOutcome names a verification failure for the deliveries metric.
func signatureOutcome(err error) string {
	switch {
	case errors.Is(err, elevenlabs.ErrMissingSignature):
		return metrics.WebhookMissingSignature
	case errors.Is(err, elevenlabs.ErrStaleSignature):
		return metrics.WebhookStale
	case errors.Is(err, elevenlabs.ErrFutureSignature):
		return metrics.WebhookFuture
	}
	return metrics.WebhookBadSignature
}

// markWebhook records that the job's webhook arrived. Best effort: only the
// submitter's in-doubt check reads it, and it waits out its grace window
// when the mark is missing.
func (in *Ingress) markWebhook(ctx context.Context, log *slog.Logger, ev *event.Event) {
	if ev.JobID == "" {
		return
	}
	if _, err := in.q.Webhooks.Put(ctx, ev.JobID, []byte(ev.RequestID)); err != nil {
		log.Warn("could not mark webhook received", "err", err)
	}
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return buf.Bytes(), err
}

// transcriptionID reads the id GET transcript needs from the result, which
// the convert answer may have lacked.
func transcriptionID(raw json.RawMessage) string {
	var t struct {
		TranscriptionID string `json:"transcription_id"`
	}
	_ = json.Unmarshal(raw, &t)
	return t.TranscriptionID
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ServerConfig holds the limits a public endpoint needs: slow or stuck
// clients cannot hold connections forever, nor send unbounded headers.
type ServerConfig struct {
	// ReadHeaderTimeout bounds reading the request headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request, body included (a large
	// transcript over a slow link). Default 5m.
	ReadTimeout time.Duration
	// WriteTimeout bounds handling and answering a request; keep it above
	// the ingress's PublishTimeout. Default 5m.
	WriteTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Default 2m.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the request headers. Default 64 KiB.
	MaxHeaderBytes int
	// Logger receives the server's own errors (a panic in a handler at
	// warn; failed TLS handshakes, which scanners cause all day, at
	// debug) instead of the standard logger's plain text. Default: the
	// standard logger.
	Logger *slog.Logger
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Minute
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Minute
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	return c
}

// Server wraps h in an http.Server with these limits.
func (c ServerConfig) Server(addr string, h http.Handler) *http.Server {
	c = c.withDefaults()
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
	}
	if c.Logger != nil {
		srv.ErrorLog = stdlog.New(serverErrors{c.Logger}, "", 0)
	}
	return srv
}

// serverErrors turns http.Server's error lines into log records.
type serverErrors struct{ log *slog.Logger }

func (w serverErrors) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, "http server", "err", msg)
	return len(p), nil
}

// NewServer wraps h in an http.Server with the default ServerConfig.
func NewServer(addr string, h http.Handler) *http.Server {
	return ServerConfig{}.Server(addr, h)
}
