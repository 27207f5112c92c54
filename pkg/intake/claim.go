package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
)

// The INTAKE entry of a job id is the cross-machine claim, and what makes a
// submit safe to run again:
//
//   - absent: never submitted. Queue creates the entry atomically (KV
//     create) as a claim holding the whole job, before anything is stored.
//   - a claim {"state":"claimed","job":{…}}: a submit started and may have
//     stopped anywhere (mid-upload, between the job and the event). Whoever
//     sees it finishes the job as it was first claimed — same batch, same
//     time — so every publish repeats the first byte for byte and
//     JetStream's message ids deduplicate it.
//   - "queued": the job and its event are published; nothing more to do.
//
// A plain "claimed" (written by older builds) is finished with the job at
// hand.
const (
	stateClaimed = "claimed"
	stateQueued  = "queued"
)

type claimRecord struct {
	State string     `json:"state"`
	Job   *event.Job `json:"job,omitempty"`
}

type record struct {
	found, queued bool
	job           *event.Job // the claimed job, when the entry holds one
}

func parseRecord(v []byte) record {
	if string(v) == stateQueued {
		return record{found: true, queued: true}
	}
	var c claimRecord
	if json.Unmarshal(v, &c) == nil && c.Job != nil && c.Job.Validate() == nil {
		return record{found: true, queued: c.State == stateQueued, job: c.Job}
	}
	return record{found: true}
}

// record reads the INTAKE entry of a job id.
func (in *Intake) record(ctx context.Context, id string) (record, error) {
	e, err := in.q.Intake.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return record{}, nil
	case err != nil:
		return record{}, fmt.Errorf("intake: read intake record %s: %w", id, err)
	}
	return parseRecord(e.Value()), nil
}

// claim makes job the claimed job of its id, or returns the job an earlier,
// interrupted submit claimed (resumed), or queued=true when the id was
// queued meanwhile.
func (in *Intake) claim(ctx context.Context, job *event.Job) (claimed *event.Job, queued bool, err error) {
	data, err := json.Marshal(claimRecord{State: stateClaimed, Job: job})
	if err != nil {
		return nil, false, fmt.Errorf("encode claim: %w", err)
	}
	// Two rounds: a create can lose to another submit's create, and then
	// that submit's claim is read.
	for range 2 {
		rec, err := in.record(ctx, job.JobID)
		if err != nil {
			return nil, false, err
		}
		switch {
		case rec.queued:
			return nil, true, nil
		case rec.job != nil:
			return rec.job, false, nil
		case rec.found:
			return job, false, nil
		}
		_, err = in.q.Intake.Create(ctx, job.JobID, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("claim job id: %w", err)
		}
		return job, false, nil
	}
	return nil, false, fmt.Errorf("claim job id %s: lost to another submit twice", job.JobID)
}

// markQueued records that a job and its event are published.
func (in *Intake) markQueued(ctx context.Context, id string) error {
	if _, err := in.q.Intake.Put(ctx, id, []byte(stateQueued)); err != nil {
		return fmt.Errorf("mark job queued in intake record: %w", err)
	}
	return nil
}
