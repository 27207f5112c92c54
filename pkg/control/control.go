// Package control is what an operator does to jobs: retry the failed ones
// and cancel the ones not worth waiting for. It reads Postgres through
// pkg/query and acts only through NATS, like every worker, so the sink stays
// the only writer of job state and every action lands in the job's history.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Deleter removes a transcript at ElevenLabs (the elevenlabs client).
type Deleter interface {
	DeleteTranscript(ctx context.Context, transcriptionID string) error
}

// Control acts on jobs.
type Control struct {
	db      *query.DB
	q       *queue.Queue
	process string
}

// New returns a Control; process names the actor in job history.
func New(db *query.DB, q *queue.Queue, process string) *Control {
	return &Control{db: db, q: q, process: process}
}

// Outcome is what happened to one job.
type Outcome struct {
	JobID  string `json:"job_id"`
	Done   bool   `json:"done"`
	Reason string `json:"reason,omitempty"`
}

// Retry starts a new attempt of each failed or canceled job: the billing
// claim is reset (the attempt will call ElevenLabs again and is counted) and
// the job goes back onto JOBS under a new message id.
func (c *Control) Retry(ctx context.Context, ids []string, batch string) ([]Outcome, error) {
	refs, err := c.db.JobRefs(ctx, ids, "failed", batch)
	if err != nil {
		return nil, err
	}
	out := missing(ids, refs)
	for _, r := range refs {
		if r.State != "failed" && r.State != "canceled" {
			out = append(out, Outcome{JobID: r.JobID, Reason: "is " + r.State + ", only failed or canceled jobs are retried"})
			continue
		}
		if err := c.retry(ctx, r); err != nil {
			out = append(out, Outcome{JobID: r.JobID, Reason: err.Error()})
			continue
		}
		out = append(out, Outcome{JobID: r.JobID, Done: true})
	}
	return out, nil
}

func (c *Control) retry(ctx context.Context, r query.JobRef) error {
	job := &event.Job{V: event.Version, JobID: r.JobID, At: time.Now().UTC()}
	if r.BatchID != nil {
		job.BatchID = *r.BatchID
	}
	if err := json.Unmarshal(r.Source, &job.Source); err != nil {
		return fmt.Errorf("read source: %w", err)
	}
	if err := json.Unmarshal(r.Options, &job.Options); err != nil {
		return fmt.Errorf("read options: %w", err)
	}
	if err := json.Unmarshal(r.Metadata, &job.Metadata); err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	if err := job.Validate(); err != nil {
		return err
	}
	attempt := r.Attempts + 1
	if err := c.resetClaim(ctx, r.JobID, attempt); err != nil {
		return err
	}
	// State first: the sink must see the job queued again before the new
	// attempt's events arrive.
	if err := c.q.PublishEvent(ctx, &event.Event{
		Type: event.TypeRetried, JobID: r.JobID, Attempt: attempt, Process: c.process,
	}); err != nil {
		return err
	}
	data, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	return c.q.PublishRaw(ctx, event.SubjectJobs, data, fmt.Sprintf("%s:retry:%d", r.JobID, attempt))
}

// resetClaim clears the job's billing claim (keeping its call count) so the
// submitter sends the new attempt.
func (c *Control) resetClaim(ctx context.Context, jobID string, attempt int) error {
	kv := c.q.Submissions
	for range 5 {
		var cl map[string]any
		e, err := kv.Get(ctx, jobID)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("read claim: %w", err)
		}
		if json.Unmarshal(e.Value(), &cl) != nil {
			cl = map[string]any{}
		}
		next, _ := json.Marshal(map[string]any{"calls": cl["calls"], "attempt": attempt})
		if _, err := kv.Update(ctx, jobID, next, e.Revision()); err == nil {
			return nil
		}
	}
	return errors.New("reset claim: it kept changing; is the job still being sent?")
}

// Cancel stops waiting for each job that has not completed. A job not yet
// sent is never sent; one already sent is left to ElevenLabs, and with
// deleter set its transcript is deleted there too.
func (c *Control) Cancel(ctx context.Context, ids []string, reason string, deleter Deleter) ([]Outcome, error) {
	refs, err := c.db.JobRefs(ctx, ids, "", "")
	if err != nil {
		return nil, err
	}
	out := missing(ids, refs)
	for _, r := range refs {
		if r.State == "completed" || r.State == "canceled" {
			out = append(out, Outcome{JobID: r.JobID, Reason: "is already " + r.State})
			continue
		}
		if err := c.blockClaim(ctx, r.JobID); err != nil {
			out = append(out, Outcome{JobID: r.JobID, Reason: err.Error()})
			continue
		}
		if err := c.q.PublishEvent(ctx, &event.Event{
			Type: event.TypeCanceled, JobID: r.JobID, Error: reason, Process: c.process,
		}); err != nil {
			out = append(out, Outcome{JobID: r.JobID, Reason: err.Error()})
			continue
		}
		o := Outcome{JobID: r.JobID, Done: true}
		if deleter != nil && r.TranscriptionID != nil {
			if err := deleter.DeleteTranscript(ctx, *r.TranscriptionID); err != nil {
				o.Reason = "canceled, but deleting the transcript at ElevenLabs failed: " + err.Error()
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// blockClaim marks the job canceled in its billing claim, so a submitter
// that still holds the job message acknowledges it without calling.
func (c *Control) blockClaim(ctx context.Context, jobID string) error {
	kv := c.q.Submissions
	for range 5 {
		e, err := kv.Get(ctx, jobID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := kv.Create(ctx, jobID, []byte(`{"canceled":true}`)); err == nil {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read claim: %w", err)
		}
		var cl map[string]any
		if json.Unmarshal(e.Value(), &cl) != nil {
			cl = map[string]any{}
		}
		cl["canceled"] = true
		next, _ := json.Marshal(cl)
		if _, err := kv.Update(ctx, jobID, next, e.Revision()); err == nil {
			return nil
		}
	}
	return errors.New("mark claim canceled: it kept changing")
}

func missing(ids []string, refs []query.JobRef) []Outcome {
	found := make(map[string]bool, len(refs))
	for _, r := range refs {
		found[r.JobID] = true
	}
	var out []Outcome
	for _, id := range ids {
		if !found[id] {
			out = append(out, Outcome{JobID: id, Reason: "no such job"})
		}
	}
	return out
}
