// Package reconciler finds what webhooks alone would lose. ElevenLabs sends
// each speech-to-text webhook once, never retries it, and sends nothing at
// all for a job that fails after it was accepted (shared/ELEVENLABS.md facts
// 1 and 5). So the reconciler periodically looks in Postgres (read-only) for
// jobs that have stayed `submitted` longer than their webhook should have
// taken, and asks ElevenLabs for each transcript by transcription_id:
//
//   - found: it publishes the `completed` event the ingress would have
//     published, with the same Nats-Msg-Id (<request_id>:completed), so a
//     late webhook and the reconciler deduplicate against each other and the
//     sink stores the result through its usual path;
//   - 404 for longer than a job could plausibly still be processing: it
//     publishes `failed` ("lost at ElevenLabs");
//   - 404 before that, or any other error: it tries again next round.
//
// Jobs without a transcription_id cannot be fetched (there is no list or
// status endpoint) and are reported. Many recoveries in one round mean the
// webhook endpoint is not receiving, which is logged as an error.
//
// One replica is enough; two would only duplicate GETs, which the message
// ids make harmless.
package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
)

// TranscriptGetter fetches a finished transcript by transcription_id. A
// transcript ElevenLabs does not have must give an error matching
// elevenlabs.ErrNotFound. *elevenlabs.Client implements it.
type TranscriptGetter interface {
	GetTranscript(ctx context.Context, transcriptionID string) (json.RawMessage, error)
}

var _ TranscriptGetter = (*elevenlabs.Client)(nil)

// Result counts what one round did.
type Result struct {
	// Stuck is how many stuck jobs the round looked at.
	Stuck int `json:"stuck"`
	// Recovered: transcripts fetched and published as completed.
	Recovered int `json:"recovered"`
	// Lost: jobs failed because ElevenLabs no longer knows their transcript.
	Lost int `json:"lost"`
	// Waiting: 404s too early to call lost; asked again next round.
	Waiting int `json:"waiting"`
	// MissingID: stuck jobs without a transcription_id, which cannot be fetched.
	MissingID int `json:"missing_id"`
	// Skipped: jobs whose event was published recently (the sink has not
	// caught up yet), and jobs not reached because the round was cut short.
	Skipped int `json:"skipped"`
	// Errors: fetches or publishes that failed; retried next round.
	Errors int `json:"errors"`
	// WebhooksUnhealthy is set when Recovered reached Config.UnhealthyRecovered.
	WebhooksUnhealthy bool `json:"webhooks_unhealthy"`
}

// Reconciler polls for stuck jobs. Round may not run concurrently with
// itself or with Run.
type Reconciler struct {
	db  *query.DB
	q   *queue.Queue
	api TranscriptGetter
	cfg Config
	log *slog.Logger

	cursor   *query.StuckCursor
	handled  map[string]time.Time // job id → when its event was published
	reported map[string]time.Time // job id → when its missing id was logged
}

// New returns a Reconciler. db should be a read-only connection: the
// reconciler never writes Postgres, it only publishes events.
func New(db *query.DB, q *queue.Queue, api TranscriptGetter, cfg Config) (*Reconciler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if db == nil || q == nil || api == nil {
		return nil, errors.New("reconciler: db, queue and api are required")
	}
	return &Reconciler{
		db: db, q: q, api: api, cfg: cfg, log: cfg.Logger,
		handled:  map[string]time.Time{},
		reported: map[string]time.Time{},
	}, nil
}

// Run does a round at once and then every Interval until ctx ends. When ctx
// ends during a round, no new fetch starts but those in flight finish and
// publish their events. Run returns nil after ctx ends; a failed round is
// logged and retried at the next interval.
func (r *Reconciler) Run(ctx context.Context) error {
	r.log.Info("reconciler running", "interval", r.cfg.Interval, "min_age", r.cfg.MinAge,
		"lost_after", r.cfg.LostAfter, "concurrency", r.cfg.Concurrency)
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := r.Round(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("reconciler round failed; trying again next round", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// outcome is what became of one stuck job.
type outcome int

const (
	recovered outcome = iota
	lost
	waiting
	failedAttempt
	// abortRound: ElevenLabs refused us (bad key, rate limit): asking about
	// the other jobs now would only be refused too.
	abortRound
	// Not fetched: recently handled, or not reached this round.
	notFetched
	missingID
)

// Round does one pass: one page of stuck jobs, fetched with at most
// Concurrency GETs at a time. It returns an error only when the stuck jobs
// could not be read; per-job failures are counted in Result.Errors.
func (r *Reconciler) Round(ctx context.Context) (Result, error) {
	var res Result
	if err := ctx.Err(); err != nil {
		return res, err
	}
	now := r.cfg.Now()
	jobs, err := r.db.Stuck(ctx, query.StuckFilter{
		Now:            now,
		MinAge:         r.cfg.MinAge,
		Base:           scale(r.cfg.Factor, r.cfg.ProcessingBase),
		PerAudioSecond: scale(r.cfg.Factor*r.cfg.ProcessingPerAudioSecond, time.Second),
		After:          r.cursor,
		Limit:          r.cfg.BatchSize,
	})
	if err != nil {
		r.cfg.Metrics.Round(r.cfg.Now(), false, err)
		return res, fmt.Errorf("reconciler: %w", err)
	}
	r.forget(now)
	res.Stuck = len(jobs)

	// The round's work outlives ctx (each call has its own timeout), so an
	// event for a transcript already fetched is still published on shutdown.
	work := context.WithoutCancel(ctx)
	stop := make(chan struct{}) // closed when the round must not start more fetches
	var stopOnce sync.Once
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.cfg.Concurrency)
	outcomes := make([]outcome, len(jobs)) // each goroutine writes only its own
	reached := len(jobs)
dispatch:
	for i, j := range jobs {
		outcomes[i] = notFetched
		if j.TranscriptionID == "" {
			outcomes[i] = missingID
			r.reportMissing(j, now)
			continue
		}
		if at, ok := r.handled[j.JobID]; ok && now.Sub(at) < r.cfg.RecheckAfter {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			reached = i
			break dispatch
		case <-stop:
			reached = i
			break dispatch
		}
		// A slot may free up at the same moment as a stop; stop wins.
		select {
		case <-stop:
			<-sem
			reached = i
			break dispatch
		default:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outcomes[i] = r.reconcile(work, j, now)
			if outcomes[i] == abortRound {
				stopOnce.Do(func() { close(stop) })
			}
		}()
	}
	wg.Wait()
	for i, j := range jobs {
		o := outcomes[i]
		if i >= reached {
			// Not reached: missing ids still count as such, the rest as skipped.
			o = notFetched
			if j.TranscriptionID == "" {
				o = missingID
			}
		}
		switch o {
		case recovered:
			res.Recovered++
			r.handled[j.JobID] = now
		case lost:
			res.Lost++
			r.handled[j.JobID] = now
		case waiting:
			res.Waiting++
		case failedAttempt, abortRound:
			res.Errors++
		case missingID:
			res.MissingID++
		case notFetched:
			res.Skipped++
		}
	}
	res.WebhooksUnhealthy = res.Recovered >= r.cfg.UnhealthyRecovered
	r.advance(jobs, reached)
	r.summarise(res)
	r.observe(res)
	return res, nil
}

func (r *Reconciler) observe(res Result) {
	m := r.cfg.Metrics
	m.Outcome(metrics.RecoveryRecovered, res.Recovered)
	m.Outcome(metrics.RecoveryLost, res.Lost)
	m.Outcome(metrics.RecoveryWaiting, res.Waiting)
	m.Outcome(metrics.RecoveryMissingID, res.MissingID)
	m.Outcome(metrics.RecoverySkipped, res.Skipped)
	m.Outcome(metrics.RecoveryError, res.Errors)
	m.Round(r.cfg.Now(), res.WebhooksUnhealthy, nil)
}

// advance moves the cursor: after the last job reached when the page was
// full or the round was cut short, back to the oldest job otherwise.
func (r *Reconciler) advance(jobs []query.StuckJob, reached int) {
	if reached == 0 && len(jobs) > 0 {
		return // nothing reached: the same page next time
	}
	if reached < len(jobs) || len(jobs) == r.cfg.BatchSize {
		last := jobs[reached-1]
		r.cursor = &query.StuckCursor{SubmittedAt: last.SubmittedAt, JobID: last.JobID}
		return
	}
	r.cursor = nil
}

// reconcile fetches one job's transcript and publishes what it found.
func (r *Reconciler) reconcile(ctx context.Context, j query.StuckJob, now time.Time) outcome {
	log := r.log.With("job_id", j.JobID, "request_id", j.RequestID, "transcription_id", j.TranscriptionID)
	age := now.Sub(j.SubmittedAt)
	getCtx, cancel := context.WithTimeout(ctx, r.cfg.GetTimeout)
	raw, err := r.api.GetTranscript(getCtx, j.TranscriptionID)
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, elevenlabs.ErrNotFound):
		limit := r.cfg.LostAfterFor(j.DurationSecs)
		if age < limit {
			log.Debug("transcript not available yet; asking again next round",
				"submitted_ago", age.Round(time.Second), "lost_after", limit)
			return waiting
		}
		return r.publishLost(ctx, log, j, age)
	default:
		return r.fetchFailed(log, j, err)
	}
	if _, err := elevenlabs.ParseTranscript(raw); err != nil {
		log.Error("transcript from ElevenLabs is not usable; asking again next round", "err", err)
		return failedAttempt
	}
	if j.RequestID == "" {
		// The completed event is keyed by request id; without one it would
		// not deduplicate against the webhook. submitted always carries one.
		log.Error("stuck job has no request_id; cannot publish its transcript")
		return failedAttempt
	}
	ev := &event.Event{
		V:               event.Version,
		Type:            event.TypeCompleted,
		JobID:           j.JobID,
		RequestID:       j.RequestID,
		TranscriptionID: j.TranscriptionID,
		At:              r.cfg.Now().UTC(),
		Process:         r.cfg.Process,
		Transcription:   raw,
	}
	pubCtx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	if err := r.q.PublishEvent(pubCtx, ev); err != nil {
		log.Error("recovered transcript not published; fetching again next round", "err", err)
		return failedAttempt
	}
	// As the ingress does: this is what frees the job's concurrency slots
	// when submitters hold them until the webhook.
	if _, err := r.q.Webhooks.Put(pubCtx, j.JobID, []byte(j.RequestID)); err != nil {
		log.Warn("could not mark the transcript received", "err", err)
	}
	log.Warn("transcript recovered by polling: its webhook never arrived",
		"submitted_ago", age.Round(time.Second), "bytes", len(raw))
	return recovered
}

func (r *Reconciler) publishLost(ctx context.Context, log *slog.Logger, j query.StuckJob, age time.Duration) outcome {
	reason := fmt.Sprintf("lost at ElevenLabs: transcript not found after %s (transcription_id %s)",
		human(age), j.TranscriptionID)
	ev := &event.Event{
		V:               event.Version,
		Type:            event.TypeFailed,
		JobID:           j.JobID,
		RequestID:       j.RequestID,
		TranscriptionID: j.TranscriptionID,
		At:              r.cfg.Now().UTC(),
		Process:         r.cfg.Process,
		Error:           reason,
	}
	pubCtx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	if err := r.q.PublishEvent(pubCtx, ev); err != nil {
		log.Error("lost job not failed; trying again next round", "err", err)
		return failedAttempt
	}
	log.Error("job failed: ElevenLabs does not know its transcript", "reason", reason)
	return lost
}

// fetchFailed logs a GET that failed for another reason than 404, and says
// whether the rest of the round should be skipped.
func (r *Reconciler) fetchFailed(log *slog.Logger, j query.StuckJob, err error) outcome {
	var apiErr *elevenlabs.APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden:
			log.Error("ElevenLabs refused the API key; check ELEVENLABS_API_KEY. Stopping this round", "err", err)
			return abortRound
		case apiErr.Status == http.StatusTooManyRequests:
			log.Warn("ElevenLabs is rate limiting transcript fetches; stopping this round",
				"err", err, "retry_after", apiErr.RetryAfter)
			return abortRound
		}
	}
	log.Warn("could not fetch transcript; trying again next round", "err", err)
	return failedAttempt
}

func (r *Reconciler) reportMissing(j query.StuckJob, now time.Time) {
	if at, ok := r.reported[j.JobID]; ok && now.Sub(at) < r.cfg.MissingIDReportEvery {
		return
	}
	r.reported[j.JobID] = now
	r.log.Warn("job stuck in submitted without a transcription_id: its transcript cannot be fetched "+
		"(ElevenLabs has no list or status endpoint); only its webhook can complete it",
		"job_id", j.JobID, "request_id", j.RequestID,
		"submitted_ago", now.Sub(j.SubmittedAt).Round(time.Second))
}

// forget drops memories old enough not to matter any more.
func (r *Reconciler) forget(now time.Time) {
	for id, at := range r.handled {
		if now.Sub(at) >= r.cfg.RecheckAfter {
			delete(r.handled, id)
		}
	}
	for id, at := range r.reported {
		if now.Sub(at) >= r.cfg.MissingIDReportEvery {
			delete(r.reported, id)
		}
	}
}

func (r *Reconciler) summarise(res Result) {
	if res.Stuck == 0 {
		r.log.Debug("reconciler round: nothing stuck")
		return
	}
	r.log.Info("reconciler round", "stuck", res.Stuck, "recovered", res.Recovered, "lost", res.Lost,
		"waiting", res.Waiting, "missing_id", res.MissingID, "skipped", res.Skipped, "errors", res.Errors)
	if res.WebhooksUnhealthy {
		r.log.Error("webhooks are not arriving: "+fmt.Sprint(res.Recovered)+" transcripts had to be recovered by polling in one round. "+
			"Check that the ingress is reachable from the Internet at the URL configured in ElevenLabs, "+
			"that the webhook is linked to speech-to-text events, and that it is not disabled or "+
			"auto-disabled in the ElevenLabs dashboard (webhooks settings); ElevenLabs never retries a speech-to-text webhook",
			"recovered", res.Recovered)
	}
}

// human renders a duration the way people write it: 2h, 2h15m, 45m, 30s.
func human(d time.Duration) string {
	if d >= time.Minute {
		d = d.Truncate(time.Minute)
	} else {
		d = d.Truncate(time.Second)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
