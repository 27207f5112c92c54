package emulator

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// APIKeys are the accepted xi-api-key values. Empty: any non-empty key
	// is accepted.
	APIKeys []string
	// WebhookURL is where results of webhook=true calls are POSTed. Without
	// it, a webhook=true call is refused with a 400, as the real API refuses
	// it when the workspace has no speech-to-text webhook.
	WebhookURL string
	// WebhookSecret keys the HMAC in ElevenLabs-Signature. Required with
	// WebhookURL.
	WebhookSecret string
	// WebhookID and WebhookName describe that webhook in GET
	// /v1/workspace/webhooks. Defaults "wh_emulator" and "scribeq emulator".
	WebhookID, WebhookName string
	// WebhookDelay is a fixed processing time before a result is ready (and
	// its webhook sent, or its synchronous answer written). Default 0.
	WebhookDelay time.Duration
	// SecondsPerAudioSecond adds processing time proportional to the audio
	// duration: 0.3 is close to the real API's 0.3·D+2 s. Default 0.
	SecondsPerAudioSecond float64
	// MaxConcurrent is the plan's concurrency limit in slots, counted as
	// ElevenLabs counts them: a job holds min(4, ⌈duration/480 s⌉) slots
	// (times its channels with use_multi_channel; never more than
	// MaxConcurrent) from its acceptance until its processing ends, just
	// before its webhook is sent (a late or dropped webhook does not hold
	// slots, as ElevenLabs counts processing). A call that does not fit is
	// answered 429 concurrent_limit_exceeded. 0 (default) means no limit.
	// When set, convert answers carry the current-/maximum-concurrent-
	// requests headers.
	MaxConcurrent int
	// Faults to inject; the zero value injects none. SetFaults changes
	// them while the server runs.
	Faults Faults
	// Seed seeds the RNG that draws faults, so that a run can be repeated
	// (as far as the order of concurrent calls allows). 0 (default): a
	// random seed, shown in Stats (and logged when faults are set).
	Seed uint64
	// Limits are the API's documented limits; zero fields take the defaults
	// listed on Limits.
	Limits Limits
	// HTTPClient delivers webhooks. Default: a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger; default discards. Secrets (keys, the webhook secret) are never logged.
	Logger *slog.Logger
	// Now is the clock for timestamps and signatures. Default time.Now.
	Now func() time.Time
}

// Limits are the numbers the real API enforces (shared/ELEVENLABS.md §1a,
// §1j). They change over time, so they live here rather than in code.
type Limits struct {
	// Models accepted as model_id. Default scribe_v1, scribe_v1_experimental, scribe_v2.
	Models []string
	// KeytermModels are the models that accept keyterms. Default scribe_v2.
	KeytermModels []string
	// MaxFileBytes caps an uploaded file. Default 3 GiB.
	MaxFileBytes int64
	// MaxMetadataBytes caps webhook_metadata. Default 16 KiB.
	MaxMetadataBytes int
	// MaxMetadataDepth caps webhook_metadata nesting. Default 2.
	MaxMetadataDepth int
	// MaxSpeakers is the largest num_speakers. Default 32.
	MaxSpeakers int
	// MaxKeyterms, MaxKeytermChars (exclusive) and MaxKeytermWords bound
	// keyterms. Defaults 1000, 50 and 5.
	MaxKeyterms, MaxKeytermChars, MaxKeytermWords int
}

func (l Limits) withDefaults() Limits {
	if len(l.Models) == 0 {
		l.Models = []string{"scribe_v1", "scribe_v1_experimental", "scribe_v2"}
	}
	if len(l.KeytermModels) == 0 {
		l.KeytermModels = []string{"scribe_v2"}
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = 3 << 30
	}
	if l.MaxMetadataBytes <= 0 {
		l.MaxMetadataBytes = 16 << 10
	}
	if l.MaxMetadataDepth <= 0 {
		l.MaxMetadataDepth = 2
	}
	if l.MaxSpeakers <= 0 {
		l.MaxSpeakers = 32
	}
	if l.MaxKeyterms <= 0 {
		l.MaxKeyterms = 1000
	}
	if l.MaxKeytermChars <= 0 {
		l.MaxKeytermChars = 50
	}
	if l.MaxKeytermWords <= 0 {
		l.MaxKeytermWords = 5
	}
	return l
}

func (c Config) withDefaults() Config {
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.WebhookID == "" {
		c.WebhookID = "wh_emulator"
	}
	if c.WebhookName == "" {
		c.WebhookName = "scribeq emulator"
	}
	c.Limits = c.Limits.withDefaults()
	c.Faults = c.Faults.withDefaults()
	if c.Seed == 0 {
		var b [8]byte
		_, _ = cryptorand.Read(b[:]) // never fails
		c.Seed = binary.BigEndian.Uint64(b[:]) | 1
	}
	return c
}

func (c Config) validate() error {
	if c.WebhookURL != "" {
		u, err := url.Parse(c.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("emulator: Config.WebhookURL %q is not an http(s) URL", c.WebhookURL)
		}
		if c.WebhookSecret == "" {
			return errors.New("emulator: Config.WebhookSecret is required with WebhookURL")
		}
	}
	if c.WebhookDelay < 0 {
		return fmt.Errorf("emulator: Config.WebhookDelay %s must be >= 0", c.WebhookDelay)
	}
	if c.SecondsPerAudioSecond < 0 {
		return fmt.Errorf("emulator: Config.SecondsPerAudioSecond %g must be >= 0", c.SecondsPerAudioSecond)
	}
	if c.MaxConcurrent < 0 {
		return fmt.Errorf("emulator: Config.MaxConcurrent %d must be >= 0", c.MaxConcurrent)
	}
	if slices.Contains(c.APIKeys, "") {
		return errors.New("emulator: Config.APIKeys holds an empty key")
	}
	if err := c.Faults.validate(); err != nil {
		return fmt.Errorf("emulator: Config.%w", err)
	}
	return nil
}

// Call is one POST /v1/speech-to-text as the emulator saw it.
type Call struct {
	At        time.Time `json:"at"`
	RequestID string    `json:"request_id"`
	// TranscriptionID is set for accepted calls.
	TranscriptionID string `json:"transcription_id,omitempty"`
	// JobID is webhook_metadata.job_id, when the metadata was valid.
	JobID string `json:"job_id,omitempty"`
	// Status is the HTTP status the call was answered with (for an
	// accepted call whose answer was lost, the 200 it would have had);
	// Error the detail.code when it is not 200.
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
	// Accepted is true when the job started: it is billed, whatever
	// became of the answer.
	Accepted bool `json:"accepted"`
	// AnswerLost is true when an accepted call's answer never reached the
	// client: the connection was reset, or the client gave up during a
	// stall.
	AnswerLost bool `json:"answer_lost,omitempty"`
	// Faults are the injected faults this call drew (see Faults), e.g.
	// "status_500", "too_many_concurrent", "reset_after_accept",
	// "drop_webhook".
	Faults []string `json:"faults,omitempty"`
	// Slots is what the accepted job counts against MaxConcurrent.
	Slots int `json:"slots,omitempty"`
	// Webhook is true for webhook=true calls.
	Webhook bool `json:"webhook"`
	// Input is "file", "source_url" or "cloud_storage_url" (empty if none).
	Input string `json:"input,omitempty"`
	// Bytes and SHA256 describe the uploaded file.
	Bytes             int64   `json:"bytes,omitempty"`
	SHA256            string  `json:"sha256,omitempty"`
	AudioDurationSecs float64 `json:"audio_duration_secs,omitempty"`
	// Delivery is the webhook's fate for accepted webhook calls: "pending",
	// "delivered" (any 2xx), "failed" (another status or a transport
	// error; never retried), "dropped" (a DropWebhooks fault) or
	// "canceled" (Close gave up waiting). It describes the first POST;
	// Deliveries counts them all, duplicates included.
	Delivery       string `json:"delivery,omitempty"`
	DeliveryStatus int    `json:"delivery_status,omitempty"`
	DeliveryError  string `json:"delivery_error,omitempty"`
	Deliveries     int    `json:"deliveries,omitempty"`
	// DeliveredAt is when the first webhook POST ended (answered or
	// failed); AnsweredAt when the convert answer was written.
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	AnsweredAt  time.Time `json:"answered_at,omitzero"`
}

// Server is the emulator. Create it with New; serve Handler().
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	// base is cancelled when Close gives up waiting, aborting pending work.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	slots       int // slots of accepted jobs still processing
	ledger      []Call
	transcripts map[string]*result
	faults      Faults
	rng         *rand.Rand
	stats       Stats
	webhook     WebhookState // see workspace.go
	started     time.Time    // the webhook's created_at_unix
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		base:        base,
		cancel:      cancel,
		transcripts: map[string]*result{},
		faults:      cfg.Faults,
		rng:         rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		stats:       Stats{Seed: cfg.Seed, MaxConcurrent: cfg.MaxConcurrent, Injected: map[string]int{}, Refused: map[int]int{}},
		started:     cfg.Now(),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/speech-to-text", s.handleConvert)
	mux.HandleFunc("GET /v1/speech-to-text/transcripts/{transcription_id}", s.handleGetTranscript)
	mux.HandleFunc("DELETE /v1/speech-to-text/transcripts/{transcription_id}", s.handleDeleteTranscript)
	mux.HandleFunc("GET /v1/workspace/webhooks", s.handleListWebhooks)
	mux.HandleFunc("GET /emulator/webhook", s.handleGetWebhookState)
	mux.HandleFunc("PUT /emulator/webhook", s.handlePutWebhookState)
	mux.HandleFunc("GET /emulator/ledger", s.handleLedger)
	mux.HandleFunc("GET /emulator/ledger/jobs", s.handleJobs)
	mux.HandleFunc("GET /emulator/stats", s.handleStats)
	mux.HandleFunc("GET /emulator/faults", s.handleGetFaults)
	mux.HandleFunc("PUT /emulator/faults", s.handlePutFaults)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newRequestID(), &apiError{
			status: http.StatusNotFound, typ: "not_found", code: "not_found",
			message: "Not Found: " + r.Method + " " + r.URL.Path,
		})
	})
	s.mux = mux
	if cfg.Faults.active() {
		s.log.Info("emulator: injecting faults", "seed", cfg.Seed, "faults", cfg.Faults)
	}
	return s, nil
}

// Handler serves the API.
func (s *Server) Handler() http.Handler { return s.mux }

// Close stops accepting convert calls (they get 503) and waits for every
// pending webhook delivery. If ctx ends first, pending deliveries are
// abandoned (their ledger entries say "canceled") and ctx's error returned.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-done
		return fmt.Errorf("emulator: close: %w", ctx.Err())
	}
}

// record appends c to the ledger and returns its index.
func (s *Server) record(c Call) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordLocked(c)
}

// recordLocked is record with s.mu held.
func (s *Server) recordLocked(c Call) int {
	s.ledger = append(s.ledger, c)
	s.stats.Calls++
	if c.Accepted {
		s.stats.Accepted++
	} else {
		s.stats.Refused[c.Status]++
	}
	return len(s.ledger) - 1
}

func (s *Server) updateCall(i int, f func(*Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.ledger[i])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"detail":{"message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
