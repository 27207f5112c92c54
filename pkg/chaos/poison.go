package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/queue"
)

// PoisonPrefix starts the id of every poison job and the message id of
// every poison message.
const PoisonPrefix = "poison-"

// Poison is what PublishPoison queued: jobs that must end failed (with
// the reasons they fail for) and messages that must end as dead letters.
type Poison struct {
	// Jobs can never succeed: their audio is missing from the object store,
	// or ElevenLabs refuses their options. Each must end failed.
	Jobs []Submitted
	// DeadLetters counts messages no worker can process (undecodable, or
	// breaking the contract). Each must end in dead_letters.
	DeadLetters int
}

// PublishPoison queues n of each poison kind straight onto the streams,
// bypassing intake's checks, as a buggy or hostile producer would.
func (c *Cluster) PublishPoison(ctx context.Context, n int, seq int) (*Poison, error) {
	nc, err := queue.Connect(c.NatsURL, "chaos-poison", nil)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	q, err := queue.Open(ctx, nc, queue.Config{})
	if err != nil {
		return nil, err
	}
	p := &Poison{}
	now := time.Now().UTC()
	job := func(id string, src event.Source, model string) error {
		j := &event.Job{V: event.Version, JobID: id, BatchID: "chaos-poison", Source: src,
			Options: event.Options{Model: model}, At: now}
		if _, err := q.PublishJob(ctx, j); err != nil {
			return err
		}
		if err := q.PublishEvent(ctx, &event.Event{Type: event.TypeQueued, JobID: id, At: now, Job: j, Process: "chaos"}); err != nil {
			return err
		}
		p.Jobs = append(p.Jobs, Submitted{JobID: id, Path: "poison:" + id})
		return nil
	}
	raw := func(subject, id string, data []byte) error {
		if err := q.PublishRaw(ctx, subject, data, id); err != nil {
			return err
		}
		p.DeadLetters++
		return nil
	}
	for i := range n {
		k := fmt.Sprintf("%d-%d", seq, i)
		for _, err := range []error{
			// A job whose audio object is gone fails at once.
			job(PoisonPrefix+"missing-audio-"+k, event.Source{
				Object: fmt.Sprintf("%064x", seq*1000+i), Name: "missing.wav", Size: 1000,
			}, "scribe_v2"),
			// ElevenLabs answers 400 for a model it does not know: no retry.
			job(PoisonPrefix+"bad-model-"+k, event.Source{URL: "https://example.com/" + k + ".wav"}, "scribe_v0"),
			raw(event.SubjectJobs, PoisonPrefix+"undecodable-job-"+k, []byte("{this is not a job")),
			raw(event.SubjectJobs, PoisonPrefix+"invalid-job-"+k, []byte(`{"v":1,"job_id":"","source":{}}`)),
			raw(event.TypeCompleted.Subject(), PoisonPrefix+"undecodable-event-"+k, []byte("\x00\x01 not an event")),
		} {
			if err != nil {
				return p, fmt.Errorf("chaos: publish poison: %w", err)
			}
		}
	}
	return p, nil
}

// DeadLetterCount counts dead_letters rows for poison messages.
func DeadLetterCount(ctx context.Context, db DB) (int, error) {
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM dead_letters WHERE msg_id LIKE $1`, PoisonPrefix+"%").Scan(&n); err != nil {
		return 0, fmt.Errorf("chaos: count dead letters: %w", err)
	}
	return n, nil
}
