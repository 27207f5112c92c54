// Package queue is scribeq's JetStream plumbing: connecting, creating the
// streams, object stores, key-value buckets and durable consumers every
// process needs (idempotently, at start), and publishing with Nats-Msg-Id so
// a retried publish is stored once. It knows the wire types of pkg/event and
// nothing of Postgres or ElevenLabs.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
)

// Config says how streams and buckets are created.
type Config struct {
	// Replicas per stream and bucket: 1 on one server, 3 on a cluster. Default 1.
	Replicas int
	// MaxAge of messages in JOBS and EVENTS. Default 7 days.
	MaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers message ids. Default 1 hour.
	DuplicateWindow time.Duration
	// ClaimCheckBytes: an event whose JSON is larger travels through the
	// PAYLOADS object store and the message carries a reference. Default
	// 512 KiB, well under NATS's default 1 MiB max payload.
	ClaimCheckBytes int
	// Logger; default discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = time.Hour
	}
	if c.ClaimCheckBytes <= 0 {
		c.ClaimCheckBytes = 512 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Queue holds the handles every process uses.
type Queue struct {
	NC          *nats.Conn
	JS          jetstream.JetStream
	Audio       jetstream.ObjectStore
	Payloads    jetstream.ObjectStore
	Intake      jetstream.KeyValue
	Submissions jetstream.KeyValue
	Webhooks    jetstream.KeyValue
	Slots       jetstream.KeyValue
	cfg         Config
}

// Connect dials NATS with reconnects that never give up: the client default
// (60 tries) closes the connection for good after about two minutes, and a
// worker that silently stops consuming is worse than one that waits.
func Connect(serverURL, name string, logger *slog.Logger) (*nats.Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	nc, err := nats.Connect(serverURL,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		nats.PingInterval(20*time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			logger.Error("nats async error", "subject", subj, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("queue: connect to nats %s: %w", redactURL(serverURL), err)
	}
	return nc, nil
}

// Open creates or updates everything scribeq needs on the server. Every
// process calls it at start; it is idempotent.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("queue: jetstream: %w", err)
	}
	q := &Queue{NC: nc, JS: js, cfg: cfg}
	// Never lower the replicas a stream already has: one process started
	// with the default of 1 against a three-server cluster would otherwise
	// quietly drop every stream to a single copy, and a lost server would
	// then lose data.
	existing := map[string]int{}
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		existing[info.Config.Name] = info.Config.Replicas
	}
	if err := streams.Err(); err != nil {
		return nil, fmt.Errorf("queue: list streams: %w", err)
	}
	replicas := func(stream string) int {
		if have := existing[stream]; have > cfg.Replicas {
			cfg.Logger.Warn("keeping the stream's replicas; set SCRIBEQ_REPLICAS to match",
				"stream", stream, "replicas", have, "configured", cfg.Replicas)
			return have
		}
		return cfg.Replicas
	}
	// Limits retention, not WorkQueue: JetStream rebuilds its duplicate
	// window after a restart only from messages it still stores, so a
	// work-queue stream forgets which job ids it has seen (RELIABILITY.md).
	// Discard New: a full stream refuses new jobs rather than silently
	// dropping unconsumed ones.
	for _, sc := range []jetstream.StreamConfig{
		{
			Name:        event.StreamJobs,
			Description: "scribeq jobs: one message per recording to transcribe",
			Subjects:    []string{event.SubjectJobs},
		},
		{
			Name:        event.StreamEvents,
			Description: "scribeq job events: queued, submitted, completed, failed",
			Subjects:    []string{event.SubjectEvents},
		},
	} {
		sc.Storage = jetstream.FileStorage
		sc.Retention = jetstream.LimitsPolicy
		sc.Discard = jetstream.DiscardNew
		sc.MaxAge = cfg.MaxAge
		sc.Duplicates = cfg.DuplicateWindow
		sc.Replicas = replicas(sc.Name)
		sc.DenyDelete = true
		sc.DenyPurge = true
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("queue: ensure stream %s: %w", sc.Name, err)
		}
	}
	if q.Audio, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      event.BucketAudio,
		Description: "audio to transcribe, named by sha256",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas("OBJ_" + event.BucketAudio),
	}); err != nil {
		return nil, fmt.Errorf("queue: ensure object store %s: %w", event.BucketAudio, err)
	}
	if q.Payloads, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      event.BucketPayloads,
		Description: "claim checks: events too large for one message",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas("OBJ_" + event.BucketPayloads),
		TTL:         cfg.MaxAge,
	}); err != nil {
		return nil, fmt.Errorf("queue: ensure object store %s: %w", event.BucketPayloads, err)
	}
	if q.Intake, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      event.BucketIntake,
		Description: "job ids already submitted",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas("KV_" + event.BucketIntake),
	}); err != nil {
		return nil, fmt.Errorf("queue: ensure kv %s: %w", event.BucketIntake, err)
	}
	if q.Submissions, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      event.BucketSubmissions,
		Description: "convert calls per job: claim and request_id, recorded before the job is acked",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas("KV_" + event.BucketSubmissions),
	}); err != nil {
		return nil, fmt.Errorf("queue: ensure kv %s: %w", event.BucketSubmissions, err)
	}
	if q.Webhooks, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      event.BucketWebhooks,
		Description: "job ids whose webhook was stored, with its request_id",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas("KV_" + event.BucketWebhooks),
		TTL:         cfg.MaxAge,
	}); err != nil {
		return nil, fmt.Errorf("queue: ensure kv %s: %w", event.BucketWebhooks, err)
	}
	if q.Slots, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      event.BucketSlots,
		Description: "ElevenLabs concurrency slots held by in-flight jobs, shared by all submitters",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas("KV_" + event.BucketSlots),
		History:     1,
	}); err != nil {
		return nil, fmt.Errorf("queue: ensure kv %s: %w", event.BucketSlots, err)
	}
	return q, nil
}

// Config returns the configuration Open used, defaults filled in.
func (q *Queue) Config() Config { return q.cfg }

// publish sends data with a message id and retries an unknown outcome (a
// timeout, a reconnect) with the same id, which JetStream deduplicates.
func (q *Queue) publish(ctx context.Context, subject string, data []byte, msgID string) (*jetstream.PubAck, error) {
	backoff := 100 * time.Millisecond
	for {
		ack, err := q.JS.Publish(ctx, subject, data, jetstream.WithMsgID(msgID))
		if err == nil {
			return ack, nil
		}
		if !Transient(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("queue: publish %s (msg id %s): %w", subject, msgID, err)
		}
		q.cfg.Logger.Warn("publish failed, retrying with the same message id", "subject", subject, "msg_id", msgID, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("queue: publish %s (msg id %s): %w", subject, msgID, errors.Join(err, ctx.Err()))
		case <-time.After(backoff + rand.N(backoff/2)):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Transient reports whether err may go away by itself: NATS is
// reconnecting, or an answer did not come in time.
func Transient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, nats.ErrAsyncPublishTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected)
}

// redactURL hides a password in a NATS URL before it reaches a log or error.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	return u.String()
}

// Close drains the connection, so everything published is flushed and
// in-flight acknowledgements are sent, then closes it.
func (q *Queue) Close() {
	done := make(chan struct{})
	q.NC.SetClosedHandler(func(*nats.Conn) { close(done) })
	if q.NC.Drain() != nil {
		q.NC.Close()
		return
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		q.NC.Close()
	}
}
