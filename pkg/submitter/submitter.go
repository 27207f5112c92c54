// Package submitter is the JOBS consumer: it sends each job's audio to the
// ElevenLabs convert endpoint in webhook mode and publishes what happened.
//
// Billing is guarded by the SUBMISSIONS key-value bucket: a job is claimed
// (compare-and-set) before convert is called, and the request_id is recorded
// there before the job message is acknowledged, so a redelivered job whose
// call already succeeded is never sent again.
package submitter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Converter is the part of the ElevenLabs client the submitter needs.
type Converter interface {
	Convert(ctx context.Context, req *elevenlabs.ConvertRequest) (*elevenlabs.ConvertResponse, error)
}

// Config configures a Submitter.
type Config struct {
	// Concurrency is how many convert calls this process makes at once. Default 4.
	Concurrency int
	// MaxAttempts is how many deliveries a job gets for transient failures
	// (429, 5xx, network) before it fails with the last reason. Default 8.
	MaxAttempts int
	// Lease is how long a claim stays valid without renewal; claims are
	// renewed while a call runs. Default 2 minutes.
	Lease time.Duration
	// ShutdownTimeout is how long in-flight calls may run after Run's context
	// is canceled; then they are canceled and their jobs redelivered. Default 60s.
	ShutdownTimeout time.Duration
	// WebhookID sends results to one configured webhook only (optional; by
	// default ElevenLabs posts to every speech-to-text webhook).
	WebhookID string
	// Process names this worker in events. Default "submitter".
	Process string
	// Logger; default discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 60 * time.Second
	}
	if c.Process == "" {
		c.Process = "submitter"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Submitter consumes JOBS.
type Submitter struct {
	q   *queue.Queue
	api Converter
	cfg Config
	log *slog.Logger
}

// New returns a Submitter; Run starts it.
func New(q *queue.Queue, api Converter, cfg Config) (*Submitter, error) {
	if q == nil || api == nil {
		return nil, errors.New("submitter: queue and converter are required")
	}
	cfg = cfg.withDefaults()
	return &Submitter{q: q, api: api, cfg: cfg, log: cfg.Logger}, nil
}

// Run consumes jobs until ctx is canceled, then stops fetching and lets
// in-flight calls finish for up to ShutdownTimeout. It fetches only as many
// messages as it has free workers, so nothing sits unacknowledged in a
// client buffer while another replica is idle.
func (s *Submitter) Run(ctx context.Context) error {
	cons, err := s.q.SubmitterConsumer(ctx, 2*s.cfg.Concurrency)
	if err != nil {
		return err
	}
	// In-flight work outlives ctx by up to ShutdownTimeout.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(s.cfg.ShutdownTimeout, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stop()

	slots := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		// Wait for one free worker, then take every other free one too.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		n := 1
	fill:
		for n < s.cfg.Concurrency {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			for range n {
				<-slots
			}
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("fetch jobs failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				s.handle(work, msg)
			}()
		}
		for range n - got {
			<-slots
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			s.log.Debug("fetch ended", "err", err)
		}
	}
	s.log.Info("submitter stopping: waiting for in-flight calls", "timeout", s.cfg.ShutdownTimeout)
	return nil
}

// claim is the SUBMISSIONS record of a job.
type claim struct {
	AttemptID       string    `json:"attempt_id"`
	LeaseUntil      time.Time `json:"lease_until"`
	Calls           int       `json:"calls"`
	RequestID       string    `json:"request_id,omitempty"`
	TranscriptionID string    `json:"transcription_id,omitempty"`
	SubmittedAt     time.Time `json:"submitted_at,omitzero"`
}

// outcome tells handle what to do with the message.
type outcome int

const (
	ack outcome = iota
	retry
	fail
)

func (s *Submitter) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		s.log.Error("job message without metadata", "err", err)
		_ = msg.Nak()
		return
	}
	job, err := event.DecodeJob(msg.Data())
	if err != nil {
		// A job that cannot be decoded can never be sent; keep the bytes in
		// the log for the operator and stop redelivering it.
		s.log.Error("undecodable job terminated", "err", err, "seq", md.Sequence.Stream, "data", truncate(msg.Data(), 512))
		_ = msg.TermWithReason("undecodable job: " + err.Error())
		return
	}
	log := s.log.With("job_id", job.JobID, "delivery", md.NumDelivered)

	// Keep the message and the claim alive while the upload runs.
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go func() {
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()

	out, delay, reason := s.submit(ctx, hbCtx, job, log)
	stopHB()
	switch {
	case out == ack:
		if err := msg.DoubleAck(ctx); err != nil {
			log.Warn("ack failed; the job will be redelivered and not sent again", "err", err)
		}
		return
	case out == retry && (reason == "" || int(md.NumDelivered) < s.cfg.MaxAttempts):
		// An empty reason is a wait that does not count against the job (a
		// rejected API key): its attempts are not the job's fault.
		log.Info("job will be retried", "in", delay, "reason", reason)
		_ = msg.NakWithDelay(delay)
		return
	}
	log.Warn("job failed", "reason", reason)
	if err := s.publish(ctx, &event.Event{Type: event.TypeFailed, JobID: job.JobID, Error: reason}); err != nil {
		log.Error("publish failed event", "err", err)
		_ = msg.NakWithDelay(backoff(1))
		return
	}
	_ = msg.DoubleAck(ctx)
}

// submit runs one delivery of a job. It returns ack when the job is done
// with (sent, or failed for good and reported), retry with a delay for a
// transient failure, and fail for a permanent failure still to be reported.
func (s *Submitter) submit(ctx, hbCtx context.Context, job *event.Job, log *slog.Logger) (outcome, time.Duration, string) {
	kv := s.q.Submissions
	attempt := newAttemptID()
	now := time.Now().UTC()
	c := claim{AttemptID: attempt, LeaseUntil: now.Add(s.cfg.Lease), Calls: 1}
	var rev uint64
	entry, err := kv.Get(ctx, job.JobID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err = kv.Create(ctx, job.JobID, mustJSON(c))
		if errors.Is(err, jetstream.ErrKeyExists) {
			return retry, time.Second, "claimed by another worker"
		}
		if err != nil {
			return retry, backoff(1), "claim job: " + err.Error()
		}
	case err != nil:
		return retry, backoff(1), "read claim: " + err.Error()
	default:
		var old claim
		if err := json.Unmarshal(entry.Value(), &old); err != nil {
			log.Warn("unreadable claim replaced", "err", err)
		}
		if old.RequestID != "" {
			// Billed already: only make sure the world knows.
			log.Info("job already sent; not sending again", "request_id", old.RequestID)
			if err := s.publish(ctx, submittedEvent(job, old)); err != nil {
				return retry, backoff(1), "publish submitted: " + err.Error()
			}
			return ack, 0, ""
		}
		if old.LeaseUntil.After(now) {
			return retry, old.LeaseUntil.Sub(now) + time.Second, "another worker holds the claim"
		}
		// A previous attempt stopped without recording an answer. Whether
		// ElevenLabs accepted it is unknown; the reliability work adds a
		// grace window here. Count the extra call so it is visible.
		c.Calls = old.Calls + 1
		log.Warn("previous attempt ended without an answer; sending again", "previous_attempt", old.AttemptID, "calls", c.Calls)
		rev, err = kv.Update(ctx, job.JobID, mustJSON(c), entry.Revision())
		if err != nil {
			return retry, time.Second, "take over claim: " + err.Error()
		}
	}
	var revMu sync.Mutex
	go func() {
		t := time.NewTicker(s.cfg.Lease / 4)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				revMu.Lock()
				c2 := c
				c2.LeaseUntil = time.Now().UTC().Add(s.cfg.Lease)
				if r, err := kv.Update(hbCtx, job.JobID, mustJSON(c2), rev); err == nil {
					rev, c = r, c2
				}
				revMu.Unlock()
			}
		}
	}()
	release := func() {
		revMu.Lock()
		defer revMu.Unlock()
		if err := kv.Delete(ctx, job.JobID, jetstream.LastRevision(rev)); err != nil {
			log.Warn("release claim", "err", err)
		}
	}

	req, closeReq, err := s.request(ctx, job, attempt)
	if err != nil {
		release()
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return fail, 0, "audio object " + job.Source.Object + " is missing from the object store"
		}
		return retry, backoff(1), "open audio: " + err.Error()
	}
	resp, err := s.api.Convert(ctx, req)
	closeReq()
	if err != nil {
		release()
		return s.classify(err, log)
	}

	revMu.Lock()
	c.RequestID, c.TranscriptionID, c.SubmittedAt = resp.RequestID, resp.TranscriptionID, time.Now().UTC()
	done := c
	// Record before anything else: from here on this job is never sent again.
	var recErr error
	for range 5 {
		if rev, recErr = kv.Update(ctx, job.JobID, mustJSON(done), rev); recErr == nil {
			break
		}
		if e, gerr := kv.Get(ctx, job.JobID); gerr == nil {
			rev = e.Revision()
		}
	}
	revMu.Unlock()
	if recErr != nil {
		// The KV is unreachable: keep the message unacked; the claim's lease
		// stops others from calling again until it expires.
		log.Error("could not record request_id; job stays unacked", "request_id", resp.RequestID, "err", recErr)
		return retry, s.cfg.Lease, "record request_id: " + recErr.Error()
	}
	log.Info("job sent", "request_id", resp.RequestID, "transcription_id", resp.TranscriptionID)
	if err := s.publish(ctx, submittedEvent(job, done)); err != nil {
		return retry, backoff(1), "publish submitted: " + err.Error()
	}
	return ack, 0, ""
}

func (s *Submitter) classify(err error, log *slog.Logger) (outcome, time.Duration, string) {
	if errors.Is(err, elevenlabs.ErrInvalidRequest) || errors.Is(err, elevenlabs.ErrSizeMismatch) {
		return fail, 0, err.Error()
	}
	var apiErr *elevenlabs.APIError
	if !errors.As(err, &apiErr) {
		log.Warn("convert call failed", "err", err)
		return retry, backoff(1), "convert: " + err.Error()
	}
	reason := apiErr.Error()
	switch {
	case apiErr.Status == 401 || apiErr.Status == 403:
		// A wrong key would fail every job; keep them queued instead.
		log.Error("ElevenLabs rejected the API key: fix ELEVENLABS_API_KEY; jobs stay queued", "status", apiErr.Status)
		return retry, 30 * time.Second, ""
	case apiErr.Temporary():
		d := apiErr.RetryAfter
		if d <= 0 {
			d = backoff(1)
		}
		log.Warn("convert call refused for now", "status", apiErr.Status, "code", apiErr.Code, "retry_in", d)
		return retry, d, reason
	default:
		return fail, 0, reason
	}
}

// request builds the convert request. closeReq releases the audio stream.
func (s *Submitter) request(ctx context.Context, job *event.Job, attempt string) (*elevenlabs.ConvertRequest, func(), error) {
	o := job.Options
	req := &elevenlabs.ConvertRequest{
		ModelID:               o.Model,
		LanguageCode:          o.Language,
		TagAudioEvents:        o.TagAudioEvents,
		NumSpeakers:           o.NumSpeakers,
		TimestampsGranularity: o.Timestamps,
		Keyterms:              o.Keyterms,
		Webhook:               true,
		WebhookID:             s.cfg.WebhookID,
		WebhookMetadata:       map[string]string{"job_id": job.JobID, "attempt_id": attempt},
	}
	if o.Diarize {
		req.Diarize = &o.Diarize
	}
	if job.Source.URL != "" {
		req.SourceURL = job.Source.URL
		return req, func() {}, nil
	}
	obj, err := s.q.Audio.Get(ctx, job.Source.Object)
	if err != nil {
		return nil, nil, fmt.Errorf("get audio %s: %w", job.Source.Object, err)
	}
	info, err := obj.Info()
	if err != nil {
		_ = obj.Close()
		return nil, nil, fmt.Errorf("stat audio %s: %w", job.Source.Object, err)
	}
	req.File, req.FileSize, req.FileName = obj, int64(info.Size), job.Source.Name
	if req.FileName == "" {
		req.FileName = job.Source.Object
	}
	return req, func() { _ = obj.Close() }, nil
}

func (s *Submitter) publish(ctx context.Context, e *event.Event) error {
	e.Process = s.cfg.Process
	return s.q.PublishEvent(ctx, e)
}

func submittedEvent(job *event.Job, c claim) *event.Event {
	return &event.Event{
		Type:            event.TypeSubmitted,
		JobID:           job.JobID,
		RequestID:       c.RequestID,
		TranscriptionID: c.TranscriptionID,
		At:              c.SubmittedAt,
	}
}

// backoff is exponential with jitter: 2s, 4s, 8s … capped at 5 minutes.
func backoff(attempt int) time.Duration {
	d := time.Duration(1<<min(attempt, 8)) * time.Second
	d = min(d, 5*time.Minute)
	return d + rand.N(d/2+1)
}

func newAttemptID() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
