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
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/slots"
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
	// InDoubtGrace is how long a job whose convert call went unanswered
	// waits for a webhook proving ElevenLabs accepted it, before it is sent
	// again (and billed again if it was). Default 15 minutes.
	InDoubtGrace time.Duration
	// KeyPause is how long every call stops after ElevenLabs rejects the
	// API key (401/403); it doubles, up to 5 minutes, while the key stays
	// wrong. Default 30s.
	KeyPause time.Duration
	// Slots, when set, is the concurrency limit shared with every other
	// submitter; a job holds its slots until its webhook arrives.
	Slots *slots.Limiter
	// WebhookID sends results to one configured webhook only (optional; by
	// default ElevenLabs posts to every speech-to-text webhook).
	WebhookID string
	// Process names this worker in events. Default "submitter".
	Process string
	// Metrics records convert calls, job transitions and cost; nil records
	// nothing.
	Metrics *metrics.Submitter
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
	if c.InDoubtGrace <= 0 {
		c.InDoubtGrace = 15 * time.Minute
	}
	if c.KeyPause <= 0 {
		c.KeyPause = 30 * time.Second
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
	key *keyGate
}

// New returns a Submitter; Run starts it.
func New(q *queue.Queue, api Converter, cfg Config) (*Submitter, error) {
	if q == nil || api == nil {
		return nil, errors.New("submitter: queue and converter are required")
	}
	cfg = cfg.withDefaults()
	cfg.Metrics.SetConcurrency(cfg.Concurrency)
	if cfg.Slots != nil {
		cfg.Metrics.WatchSlots(cfg.Slots.Usage)
	}
	return &Submitter{q: q, api: api, cfg: cfg, log: cfg.Logger, key: &keyGate{base: cfg.KeyPause}}, nil
}

// Run consumes jobs until ctx is canceled, then stops fetching and lets
// in-flight calls finish for up to ShutdownTimeout. It fetches only as many
// messages as it has free workers, so nothing sits unacknowledged in a
// client buffer while another replica is idle.
func (s *Submitter) Run(ctx context.Context) error {
	cons, err := s.q.SubmitterConsumer(ctx)
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

	if s.cfg.Slots != nil {
		go func() {
			if err := s.cfg.Slots.ReleaseOnWebhooks(work, s.q.Webhooks); err != nil {
				s.log.Error("slots will only be freed by their deadline", "err", err)
			}
		}()
	}
	free := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		// While the key is rejected, leave the jobs in the stream.
		if d := s.key.paused(); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
			continue
		}
		// Wait for one free worker, then take every other free one too.
		select {
		case free <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		n := 1
	fill:
		for n < s.cfg.Concurrency {
			select {
			case free <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			for range n {
				<-free
			}
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("fetch jobs failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			cons = s.recreate(ctx, cons, err)
			continue
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-free }()
				s.handle(work, msg)
			}()
		}
		for range n - got {
			<-free
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			s.log.Debug("fetch ended", "err", err)
			cons = s.recreate(ctx, cons, err)
		}
	}
	s.log.Info("submitter stopping: waiting for in-flight calls", "timeout", s.cfg.ShutdownTimeout)
	return nil
}

// recreate makes the consumer again when err says it is gone: fetching
// from a deleted consumer would wait forever.
func (s *Submitter) recreate(ctx context.Context, cons jetstream.Consumer, err error) jetstream.Consumer {
	if !queue.ConsumerGone(err) || ctx.Err() != nil {
		return cons
	}
	c, cerr := s.q.SubmitterConsumer(ctx)
	if cerr != nil {
		s.log.Error("consumer gone and not recreated; retrying", "err", cerr)
		return cons
	}
	s.log.Warn("consumer was gone; recreated", "cause", err)
	return c
}

// claim is the SUBMISSIONS record of a job.
type claim struct {
	AttemptID  string    `json:"attempt_id"`
	LeaseUntil time.Time `json:"lease_until"`
	// Calls counts convert calls started for this job, answered or not.
	Calls int `json:"calls"`
	// Pending marks a call started but not settled: in flight, or its
	// answer lost (a crash, a connection error after the request was sent),
	// so ElevenLabs may have accepted it.
	Pending         bool      `json:"pending,omitempty"`
	RequestID       string    `json:"request_id,omitempty"`
	TranscriptionID string    `json:"transcription_id,omitempty"`
	SubmittedAt     time.Time `json:"submitted_at,omitzero"`
	// Canceled: an operator stopped the job; it is never sent.
	Canceled bool `json:"canceled,omitempty"`
	// Attempt is the operator's retry number (0 for the first attempt).
	Attempt int `json:"attempt,omitempty"`
}

// outcome tells handle what to do with the message.
type outcome int

const (
	ack outcome = iota
	retry
	fail
)

// verdict is the result of one delivery.
type verdict struct {
	out    outcome
	delay  time.Duration
	reason string // empty on a retry: a wait that does not count against the job
	calls  int
	// requestID and transcriptionID are set once ElevenLabs has accepted
	// the job, so that every later log line about it carries them.
	requestID, transcriptionID string
}

// sent is the verdict for a job ElevenLabs accepted as c records.
func sent(c claim) verdict {
	return verdict{out: ack, requestID: c.RequestID, transcriptionID: c.TranscriptionID}
}

func (s *Submitter) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		s.log.Error("job message without metadata", "msg_id", msg.Headers().Get("Nats-Msg-Id"), "err", err)
		_ = msg.Nak()
		return
	}
	job, err := event.DecodeJob(msg.Data())
	if err != nil {
		// A job that cannot be decoded can never be sent: hand its bytes to
		// the dead letters, then stop redelivering it.
		if perr := s.publish(ctx, &event.Event{Type: event.TypeDeadLetter, DeadLetter: &event.DeadLetter{
			Stream: event.StreamJobs, Subject: msg.Subject(), MsgID: msg.Headers().Get("Nats-Msg-Id"),
			Seq: md.Sequence.Stream, Headers: msg.Headers(), Data: msg.Data(), Error: err.Error(),
			Attempts: int(md.NumDelivered),
		}}); perr != nil {
			s.log.Error("could not dead-letter an undecodable job; it stays", "err", perr, "msg_id", msg.Headers().Get("Nats-Msg-Id"))
			_ = msg.NakWithDelay(backoff(1))
			return
		}
		s.cfg.Metrics.DeadLettered()
		s.log.Error("undecodable job dead-lettered", "err", err, "seq", md.Sequence.Stream, "msg_id", msg.Headers().Get("Nats-Msg-Id"))
		_ = msg.TermWithReason("undecodable job: " + err.Error())
		return
	}
	log := s.log.With("job_id", job.JobID, "delivery", md.NumDelivered)

	// Keep the message alive while the upload runs.
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

	v := s.submit(ctx, hbCtx, job, log)
	stopHB()
	if v.requestID != "" {
		log = log.With("request_id", v.requestID, "transcription_id", v.transcriptionID)
	}
	switch {
	case v.out == ack:
		if err := msg.DoubleAck(ctx); err != nil {
			log.Warn("ack failed; the job will be redelivered and not sent again", "err", err)
		}
		return
	case v.out == retry && (v.reason == "" || int(md.NumDelivered) < s.cfg.MaxAttempts):
		log.Info("job will be retried", "in", v.delay, "reason", v.reason)
		kind := metrics.RetryError
		if v.reason == "" {
			kind = metrics.RetryWait
		}
		s.cfg.Metrics.Retried(kind)
		_ = msg.NakWithDelay(v.delay)
		return
	}
	log.Warn("job failed", "reason", v.reason)
	attempt := 0
	if e, err := s.q.Submissions.Get(ctx, job.JobID); err == nil {
		var c claim
		if json.Unmarshal(e.Value(), &c) == nil {
			attempt = c.Attempt
		}
	}
	if err := s.publish(ctx, &event.Event{Type: event.TypeFailed, JobID: job.JobID, Error: v.reason, ConvertCalls: v.calls, Attempt: attempt}); err != nil {
		log.Error("publish failed event", "err", err)
		_ = msg.NakWithDelay(backoff(1))
		return
	}
	s.cfg.Metrics.Failed()
	_ = msg.DoubleAck(ctx)
}

// submit runs one delivery of a job.
//
// The SUBMISSIONS entry decides whether convert may be called:
//   - none: claim it (create) and call;
//   - request_id recorded: never call again, only re-announce `submitted`;
//   - another worker's lease still running: wait;
//   - lease expired with no request_id: the earlier call is in doubt. If
//     the ingress has stored a webhook for this job, that call was accepted:
//     adopt its request_id. Otherwise wait out the grace window (a webhook
//     may still come) and only then call again, counted.
func (s *Submitter) submit(ctx, hbCtx context.Context, job *event.Job, log *slog.Logger) verdict {
	kv := s.q.Submissions
	now := time.Now().UTC()
	c := claim{AttemptID: newAttemptID(), LeaseUntil: now.Add(s.cfg.Lease), Calls: 1, Pending: true}
	var rev uint64
	entry, err := kv.Get(ctx, job.JobID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err = kv.Create(ctx, job.JobID, mustJSON(c))
		if errors.Is(err, jetstream.ErrKeyExists) {
			return verdict{out: retry, delay: time.Second}
		}
		if err != nil {
			return verdict{out: retry, delay: backoff(1), reason: "claim job: " + err.Error()}
		}
	case err != nil:
		return verdict{out: retry, delay: backoff(1), reason: "read claim: " + err.Error()}
	default:
		var old claim
		if err := json.Unmarshal(entry.Value(), &old); err != nil {
			log.Warn("unreadable claim replaced", "err", err)
		}
		if old.Canceled {
			log.Info("job canceled; not sending it")
			return verdict{out: ack}
		}
		c.Attempt = old.Attempt
		if old.RequestID != "" {
			v := sent(old)
			log.Info("job already sent; not sending again", "request_id", old.RequestID, "transcription_id", old.TranscriptionID)
			if err := s.publish(ctx, submittedEvent(job, old)); err != nil {
				v.out, v.delay, v.reason, v.calls = retry, backoff(1), "publish submitted: "+err.Error(), old.Calls
			}
			return v
		}
		if old.LeaseUntil.After(now) {
			return verdict{out: retry, delay: old.LeaseUntil.Sub(now) + time.Second}
		}
		if old.Pending {
			if v, done := s.resolveInDoubt(ctx, job, entry.Revision(), old, now, log); done {
				return v
			}
		}
		c.Calls = old.Calls + 1
		if old.Pending {
			log.Warn("earlier convert call unanswered and no webhook within the grace window; sending again",
				"previous_attempt", old.AttemptID, "calls", c.Calls)
		}
		rev, err = kv.Update(ctx, job.JobID, mustJSON(c), entry.Revision())
		if err != nil {
			return verdict{out: retry, delay: time.Second}
		}
	}
	var revMu sync.Mutex
	settled := false // once set, the renewer leaves the claim alone
	go func() {
		t := time.NewTicker(s.cfg.Lease / 4)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				revMu.Lock()
				if settled {
					revMu.Unlock()
					return
				}
				c2 := c
				c2.LeaseUntil = time.Now().UTC().Add(s.cfg.Lease)
				if r, err := kv.Update(hbCtx, job.JobID, mustJSON(c2), rev); err == nil {
					rev, c = r, c2
				}
				revMu.Unlock()
			}
		}
	}()
	// finish rewrites the claim under the lock the renewer shares.
	finish := func(update func(*claim)) error {
		revMu.Lock()
		defer revMu.Unlock()
		settled = true
		update(&c)
		var err error
		for range 5 {
			var r uint64
			if r, err = kv.Update(ctx, job.JobID, mustJSON(c), rev); err == nil {
				rev = r
				return nil
			}
			if e, gerr := kv.Get(ctx, job.JobID); gerr == nil {
				rev = e.Revision()
			}
		}
		return err
	}
	// release forgets a call that certainly was not accepted; the count stays.
	release := func() {
		if err := finish(func(c *claim) { c.LeaseUntil, c.Pending = time.Time{}, false; c.Calls-- }); err != nil {
			log.Warn("release claim", "err", err)
		}
	}

	if lim := s.cfg.Slots; lim != nil {
		d := job.Source.DurationSecs
		// ElevenLabs' rough processing time is 0.3·D + 2 s; hold three times it.
		hold := time.Duration(3*(0.3*d+2)) * time.Second
		if err := lim.Acquire(ctx, job.JobID, slots.Cost(d, 1), hold); err != nil {
			release()
			return verdict{out: retry, delay: time.Second}
		}
	}
	freeSlots := func() {
		if s.cfg.Slots != nil {
			if err := s.cfg.Slots.Release(ctx, job.JobID); err != nil {
				log.Warn("release slots", "err", err)
			}
		}
	}

	req, closeReq, err := s.request(ctx, job, c.AttemptID)
	if err != nil {
		freeSlots()
		release()
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return verdict{out: fail, reason: "audio object " + job.Source.Object + " is missing from the object store", calls: c.Calls}
		}
		return verdict{out: retry, delay: backoff(1), reason: "open audio: " + err.Error(), calls: c.Calls}
	}
	if d := s.key.admit(); d > 0 {
		closeReq()
		freeSlots()
		release()
		return verdict{out: retry, delay: d}
	}
	convertDone := s.cfg.Metrics.ConvertStarted()
	resp, err := s.api.Convert(ctx, req)
	closeReq()
	status, kind := convertErrorLabels(err)
	convertDone(err, status, kind)
	var apiErr *elevenlabs.APIError
	keyRejected := errors.As(err, &apiErr) && (apiErr.Status == 401 || apiErr.Status == 403)
	if pause := s.key.settle(keyRejected); keyRejected {
		freeSlots()
		release()
		log.Error("ElevenLabs rejected the API key: fix ELEVENLABS_API_KEY. Submitting is paused; jobs stay queued",
			"status", apiErr.Status, "code", apiErr.Code, "message", apiErr.Message, "next_try_in", pause.Round(time.Second))
		return verdict{out: retry, delay: pause}
	}
	if err != nil {
		if s.cfg.Slots != nil && errors.As(err, &apiErr) && apiErr.TooManyConcurrent() {
			if err := s.cfg.Slots.TooMany(ctx, apiErr.MaxConcurrentRequests); err != nil {
				log.Warn("lower concurrency limit", "err", err)
			}
		}
		if notSent(err) {
			freeSlots()
			release()
		} else if ferr := finish(func(c *claim) { c.LeaseUntil = time.Now().UTC() }); ferr != nil {
			log.Warn("mark claim in doubt", "err", ferr)
		}
		v := s.classify(err, log)
		v.calls = c.Calls
		return v
	}

	// Record before anything else: from here on this job is never sent again.
	log = log.With("request_id", resp.RequestID, "transcription_id", resp.TranscriptionID)
	err = finish(func(c *claim) {
		c.RequestID, c.TranscriptionID, c.SubmittedAt, c.Pending = resp.RequestID, resp.TranscriptionID, time.Now().UTC(), false
	})
	if err != nil {
		// The KV is unreachable: keep the message unacked; the claim's lease
		// stops others from calling again until it expires.
		log.Error("could not record request_id; job stays unacked", "err", err)
		return verdict{out: retry, delay: s.cfg.Lease, reason: "record request_id: " + err.Error(), calls: c.Calls,
			requestID: resp.RequestID, transcriptionID: resp.TranscriptionID}
	}
	log.Info("job sent")
	s.cfg.Metrics.Accepted(job)
	if s.cfg.Slots != nil {
		if err := s.cfg.Slots.Accepted(ctx); err != nil {
			log.Warn("raise concurrency limit", "err", err)
		}
	}
	v := sent(c)
	if err := s.publish(ctx, submittedEvent(job, c)); err != nil {
		v.out, v.delay, v.reason, v.calls = retry, backoff(1), "publish submitted: "+err.Error(), c.Calls
	}
	return v
}

// resolveInDoubt settles a claim whose call was never answered. done is
// false when the grace window has passed without news: call again.
func (s *Submitter) resolveInDoubt(ctx context.Context, job *event.Job, rev uint64, old claim, now time.Time, log *slog.Logger) (verdict, bool) {
	e, err := s.q.Webhooks.Get(ctx, job.JobID)
	switch {
	case err == nil:
		old.RequestID, old.SubmittedAt, old.Pending = string(e.Value()), now, false
		if _, err := s.q.Submissions.Update(ctx, job.JobID, mustJSON(old), rev); err != nil {
			return verdict{out: retry, delay: time.Second}, true
		}
		log.Info("earlier call was accepted after all: its webhook arrived", "request_id", old.RequestID)
		s.cfg.Metrics.Accepted(job)
		v := sent(old)
		if err := s.publish(ctx, submittedEvent(job, old)); err != nil {
			v.out, v.delay, v.reason, v.calls = retry, backoff(1), "publish submitted: "+err.Error(), old.Calls
		}
		return v, true
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return verdict{out: retry, delay: backoff(1), reason: "read webhook mark: " + err.Error(), calls: old.Calls}, true
	}
	if wait := old.LeaseUntil.Add(s.cfg.InDoubtGrace).Sub(now); wait > 0 {
		log.Info("earlier call in doubt: waiting for its webhook before sending again", "grace_left", wait.Round(time.Second))
		return verdict{out: retry, delay: min(wait, 10*time.Second)}, true
	}
	return verdict{}, false
}

// notSent reports whether a failed call certainly never reached
// ElevenLabs (nothing could have been billed).
func notSent(err error) bool {
	var apiErr *elevenlabs.APIError
	if errors.As(err, &apiErr) {
		return true // an answer came: the call is settled either way
	}
	if errors.Is(err, elevenlabs.ErrInvalidRequest) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

func (s *Submitter) classify(err error, log *slog.Logger) verdict {
	if errors.Is(err, elevenlabs.ErrInvalidRequest) || errors.Is(err, elevenlabs.ErrSizeMismatch) {
		return verdict{out: fail, reason: err.Error()}
	}
	var apiErr *elevenlabs.APIError
	if !errors.As(err, &apiErr) {
		log.Warn("convert call failed", "err", err)
		return verdict{out: retry, delay: backoff(1), reason: "convert: " + err.Error()}
	}
	switch {
	case apiErr.TooManyConcurrent():
		// Wait for a slot: this is our pacing, not the job's failure.
		d := apiErr.RetryAfter
		if d <= 0 {
			d = 2 * time.Second
		}
		log.Info("ElevenLabs has no free slot; waiting", "retry_in", d)
		return verdict{out: retry, delay: d}
	case apiErr.Temporary():
		d := apiErr.RetryAfter
		if d <= 0 {
			d = backoff(1)
		}
		log.Warn("convert call refused for now", "status", apiErr.Status, "code", apiErr.Code, "retry_in", d)
		return verdict{out: retry, delay: d, reason: apiErr.Error()}
	default:
		return verdict{out: fail, reason: apiErr.Error()}
	}
}

// convertErrorLabels names a failed convert call for
// scribeq_submitter_convert_errors_total: the HTTP status (or none) and the
// kind of failure. Both come from small fixed sets.
func convertErrorLabels(err error) (status, kind string) {
	if err == nil {
		return "", ""
	}
	var apiErr *elevenlabs.APIError
	if errors.As(err, &apiErr) {
		status = strconv.Itoa(apiErr.Status)
		if apiErr.Status < 100 || apiErr.Status > 599 {
			status = metrics.StatusNone // keep the label's values few
		}
		switch {
		case apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden:
			return status, metrics.KindKeyRejected
		case apiErr.TooManyConcurrent():
			return status, metrics.KindConcurrencyLimit
		case apiErr.Status == http.StatusTooManyRequests:
			return status, metrics.KindRateLimited
		case apiErr.Status >= 500:
			return status, metrics.KindServerError
		case apiErr.Status == http.StatusRequestTimeout:
			return status, metrics.KindTimeout
		case apiErr.Status == http.StatusConflict:
			return status, metrics.KindConflict
		}
		return status, metrics.KindRejected
	}
	switch {
	case errors.Is(err, elevenlabs.ErrInvalidRequest):
		return metrics.StatusNone, metrics.KindInvalidRequest
	case errors.Is(err, elevenlabs.ErrSizeMismatch):
		return metrics.StatusNone, metrics.KindSizeMismatch
	case errors.Is(err, context.Canceled):
		return metrics.StatusNone, metrics.KindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return metrics.StatusNone, metrics.KindTimeout
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return metrics.StatusNone, metrics.KindTimeout
	}
	return metrics.StatusNone, metrics.KindNetwork
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
		UseMultiChannel:       o.MultiChannel,
		EntityDetection:       o.EntityDetection,
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
	obj, err := s.q.OpenAudio(ctx, job.Source.Object)
	if err != nil {
		return nil, nil, err
	}
	req.File, req.FileSize, req.FileName = obj, int64(obj.Info.Size), job.Source.Name
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
		ConvertCalls:    c.Calls,
		Attempt:         c.Attempt,
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
