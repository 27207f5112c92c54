package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
)

// publishTimeout bounds one publish attempt when the caller's context has no
// deadline, so an unanswered publish is retried instead of hanging.
const publishTimeout = 10 * time.Second

// PublishJob puts a job on JOBS with the job id as message id. duplicate
// reports that JetStream already had it (inside the duplicate window).
func (q *Queue) PublishJob(ctx context.Context, j *event.Job) (duplicate bool, err error) {
	data, err := json.Marshal(j)
	if err != nil {
		return false, fmt.Errorf("queue: encode job %s: %w", j.JobID, err)
	}
	ack, err := q.publish(ctx, event.SubjectJobs, data, j.JobID)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// PublishEvent puts an event on EVENTS with its message id. An event whose
// JSON exceeds ClaimCheckBytes is stored whole in the PAYLOADS object store
// first, under a name of its own, and the message carries only a reference:
// the object is written before the reference is published, so a crash in
// between leaves an orphan (expired by the bucket's TTL), never a dangling
// reference. When JetStream already had the message (a duplicate webhook,
// a recovery racing its webhook), this publish's object is deleted at once:
// the stored message references its own.
func (q *Queue) PublishEvent(ctx context.Context, e *event.Event) error {
	if e.V == 0 {
		e.V = event.Version
	}
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("queue: encode %s event for job %s: %w", e.Type, e.JobID, err)
	}
	msgID := e.MsgID()
	var name string
	if len(data) > q.cfg.ClaimCheckBytes {
		name = payloadName(msgID)
		if _, err := q.Payloads.Put(ctx, jetstream.ObjectMeta{Name: name}, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("queue: store claim check %s: %w", name, err)
		}
		ref := *e
		ref.Transcription, ref.WebhookMetadata, ref.Job, ref.DeadLetter = nil, nil, nil, nil
		ref.PayloadRef = name
		if data, err = json.Marshal(&ref); err != nil {
			return fmt.Errorf("queue: encode claim check for %s: %w", msgID, err)
		}
	}
	ack, err := q.publish(ctx, e.Type.Subject(), data, msgID)
	if err != nil {
		return err
	}
	if ack.Duplicate && name != "" {
		if err := q.ReleasePayload(ctx, name); err != nil {
			q.cfg.Logger.Warn("could not delete the claim check of a duplicate", "ref", name, "err", err)
		}
	}
	return nil
}

// payloadName is unique per publish, so that a duplicate's object can be
// deleted without touching the one the stored message references.
func payloadName(msgID string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "event/" + msgID + "/" + hex.EncodeToString(b[:])
}

// ErrPayloadMissing means a claim-check reference names an object that is
// not (or no longer) in the PAYLOADS bucket.
var ErrPayloadMissing = errors.New("claim-check payload missing")

// Resolve returns the full event for a claim-check reference, or e itself
// when it carries no reference.
func (q *Queue) Resolve(ctx context.Context, e *event.Event) (*event.Event, error) {
	if e.PayloadRef == "" {
		return e, nil
	}
	data, err := q.readObject(ctx, q.Payloads, event.BucketPayloads, e.PayloadRef)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("queue: resolve %s: %w", e.PayloadRef, ErrPayloadMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: resolve %s: %w", e.PayloadRef, err)
	}
	full, err := event.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("queue: resolve %s: %w", e.PayloadRef, err)
	}
	if full.PayloadRef != "" {
		return nil, fmt.Errorf("queue: resolve %s: payload is itself a reference", e.PayloadRef)
	}
	return full, nil
}

// readObject reads a whole object into a buffer of its size. nats.go's
// GetBytes buffers up to 64 MiB on the way and grows its result as it
// reads, which held a 10-hour transcript three times over.
func (q *Queue) readObject(ctx context.Context, store jetstream.ObjectStore, bucket, name string) ([]byte, error) {
	r, err := q.openObject(ctx, store, bucket, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var buf bytes.Buffer
	buf.Grow(int(r.Info.Size) + bytes.MinRead)
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReleasePayload deletes a claim-check object once its effect is committed.
// A missing object is not an error: a replayed reference finds it gone.
func (q *Queue) ReleasePayload(ctx context.Context, ref string) error {
	if ref == "" {
		return nil
	}
	err := q.Payloads.Delete(ctx, ref)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("queue: release claim check %s: %w", ref, err)
	}
	return nil
}

// PublishRaw sends bytes as they are (a dead letter going back, a spooled
// event) with msgID for deduplication.
func (q *Queue) PublishRaw(ctx context.Context, subject string, data []byte, msgID string) error {
	_, err := q.publish(ctx, subject, data, msgID)
	return err
}
