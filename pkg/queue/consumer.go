package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
)

// Durable consumer names.
const (
	ConsumerSubmitter = "submitter"
	ConsumerSink      = "sink"
)

// The consumers' MaxAckPending is consumer-wide, shared by every replica,
// and whichever replica starts last writes it. So it is a constant sized for
// a fleet, not derived from one replica's flags: each replica fetches only
// what it has room for, and these only stop a runaway.
const (
	submitterMaxAckPending = 1000
	sinkMaxAckPending      = 20000
)

// SubmitterConsumer creates or updates the shared durable pull consumer on
// JOBS. AckWait covers the time between InProgress heartbeats, not the whole
// upload. Deliveries are unlimited: the submitter counts the attempts that
// are the job's fault and fails it itself, while waits that are not (a
// rejected API key, an in-doubt call's grace window) may take any number.
func (q *Queue) SubmitterConsumer(ctx context.Context) (jetstream.Consumer, error) {
	c, err := q.JS.CreateOrUpdateConsumer(ctx, event.StreamJobs, jetstream.ConsumerConfig{
		Durable:       ConsumerSubmitter,
		Description:   "scribeq submitter: sends each job to ElevenLabs once",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       60 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: submitterMaxAckPending,
		FilterSubject: event.SubjectJobs,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: ensure consumer %s: %w", ConsumerSubmitter, err)
	}
	return c, nil
}

// SinkConsumer creates or updates the shared durable pull consumer on
// EVENTS. Deliveries are unlimited: the sink waits out outages and
// dead-letters what can never be applied itself.
func (q *Queue) SinkConsumer(ctx context.Context) (jetstream.Consumer, error) {
	c, err := q.JS.CreateOrUpdateConsumer(ctx, event.StreamEvents, jetstream.ConsumerConfig{
		Durable:       ConsumerSink,
		Description:   "scribeq sink: writes job state and transcripts to Postgres",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: sinkMaxAckPending,
		FilterSubject: event.SubjectEvents,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: ensure consumer %s: %w", ConsumerSink, err)
	}
	return c, nil
}

// ConsumerGone reports whether err means the consumer a fetch used no
// longer exists or stopped answering, so the caller should create it again
// rather than keep fetching from nothing.
func ConsumerGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrNoHeartbeat)
}
