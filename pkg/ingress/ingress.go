// Package ingress receives ElevenLabs' speech-to-text webhooks. It verifies
// the signature on the raw bytes before parsing anything, publishes a
// `completed` event, and answers 200 only after JetStream has acknowledged
// it: ElevenLabs sends each webhook once, so a 200 is a promise that the
// transcript is safely stored.
package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/queue"
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
	return nil
}

// Ingress is the HTTP handler: the webhook endpoint plus /healthz and /readyz.
type Ingress struct {
	q      *queue.Queue
	cfg    Config
	verify *elevenlabs.Verifier
	log    *slog.Logger
	mux    *http.ServeMux
}

// New returns the handler.
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
	}
	in.mux.HandleFunc("POST "+cfg.Path, in.webhook)
	in.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	in.mux.HandleFunc("GET /readyz", in.ready)
	return in, nil
}

func (in *Ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) { in.mux.ServeHTTP(w, r) }

func (in *Ingress) ready(w http.ResponseWriter, _ *http.Request) {
	if !in.q.NC.IsConnected() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "nats not connected"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (in *Ingress) webhook(w http.ResponseWriter, r *http.Request) {
	log := in.log.With("remote", r.RemoteAddr)
	body, err := readBody(w, r, in.cfg.MaxBodyBytes)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			log.Warn("webhook rejected: body too large", "limit", in.cfg.MaxBodyBytes)
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
			return
		}
		log.Warn("webhook rejected: reading body", "err", err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "could not read body"})
		return
	}
	if err := in.verify.Verify(r.Header.Get(elevenlabs.SignatureHeader), body); err != nil {
		log.Warn("webhook rejected: signature", "reason", err)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid signature"})
		return
	}
	wh, err := elevenlabs.ParseWebhook(body)
	if errors.Is(err, elevenlabs.ErrOtherWebhookType) {
		// Not ours to store, but refusing it would count towards
		// ElevenLabs disabling the whole webhook.
		log.Info("webhook ignored", "reason", err)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored"})
		return
	}
	if err != nil {
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
	log = log.With("job_id", ev.JobID, "request_id", ev.RequestID)
	// The sender does not wait for our storage problems: bound them and
	// answer 503 so the failure is at least visible on their side.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), in.cfg.PublishTimeout)
	defer cancel()
	if err := in.q.PublishEvent(ctx, ev); err != nil {
		log.Error("webhook not stored", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "could not store the event"})
		return
	}
	if ev.JobID != "" {
		// Best effort: only the submitter's in-doubt check reads it, and it
		// waits out its grace window when the mark is missing.
		if _, err := in.q.Webhooks.Put(ctx, ev.JobID, []byte(ev.RequestID)); err != nil {
			log.Warn("could not mark webhook received", "err", err)
		}
	}
	log.Info("webhook stored", "bytes", len(body))
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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

// NewServer wraps h in an http.Server with the timeouts a public endpoint
// needs: slow or stuck clients cannot hold connections forever.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
