// Package sink is the EVENTS consumer that writes job state and transcripts
// to Postgres. It applies a batch of events in one transaction and
// acknowledges the messages only after that transaction has committed; every
// write is idempotent, so a redelivered batch changes nothing.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/store"
)

// Config configures a Sink.
type Config struct {
	// BatchSize is the most events applied in one transaction. Default 500.
	BatchSize int
	// Writers is how many batches commit at once, each on its own
	// connection. Default 2.
	Writers int
	// MaxBatchBytes caps the transcript bytes applied in one transaction;
	// a bigger transcript is applied on its own. Default 16 MiB.
	MaxBatchBytes int
	// MaxWait is how long a fetch waits to fill a batch. Default 1s.
	MaxWait time.Duration
	// MaxAttempts is how many deliveries an event gets for transient
	// failures before it is dead-lettered. Default 20.
	MaxAttempts int
	// Metrics records batch sizes, commit latency and applied events; nil
	// records nothing.
	Metrics *metrics.Sink
	// Logger; default discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.Writers <= 0 {
		c.Writers = 2
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 16 << 20
	}
	if c.MaxWait <= 0 {
		c.MaxWait = time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Sink consumes EVENTS into the store.
type Sink struct {
	q   *queue.Queue
	st  *store.Store
	cfg Config
	log *slog.Logger
}

// New returns a Sink; Run starts it.
func New(q *queue.Queue, st *store.Store, cfg Config) (*Sink, error) {
	if q == nil || st == nil {
		return nil, errors.New("sink: queue and store are required")
	}
	cfg = cfg.withDefaults()
	return &Sink{q: q, st: st, cfg: cfg, log: cfg.Logger}, nil
}

// Run consumes until ctx is canceled. Batches are fetched and decoded
// while earlier ones commit, Writers transactions at a time, so the sink's
// CPU and Postgres's cores work at the same time; Apply's locks keep
// concurrent transactions off each other's rows. When ctx is canceled the
// batches in hand are still committed and acknowledged, on a context that
// is not canceled, so a stop never leaves work half done.
func (s *Sink) Run(ctx context.Context) error {
	cons, err := s.q.SinkConsumer(ctx)
	if err != nil {
		return err
	}
	work := context.WithoutCancel(ctx)
	ready := make(chan []item, 1)
	go func() {
		defer close(ready)
		for ctx.Err() == nil {
			batch, err := cons.Fetch(s.cfg.BatchSize, jetstream.FetchMaxWait(s.cfg.MaxWait))
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("fetch events failed", "err", err)
				sleep(ctx, time.Second)
				cons = s.recreate(ctx, cons, err)
				continue
			}
			var msgs []jetstream.Msg
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			cons = s.recreate(ctx, cons, batch.Error())
			s.prepare(work, msgs, func(items []item) { ready <- items })
		}
	}()
	var wg sync.WaitGroup
	for range s.cfg.Writers {
		wg.Go(func() {
			for items := range ready {
				s.apply(work, items)
			}
		})
	}
	wg.Wait()
	return nil
}

// recreate makes the consumer again when err says it is gone (deleted by
// hand, lost with a server's state): fetching from it would wait forever.
func (s *Sink) recreate(ctx context.Context, cons jetstream.Consumer, err error) jetstream.Consumer {
	if err == nil || !queue.ConsumerGone(err) || ctx.Err() != nil {
		return cons
	}
	c, cerr := s.q.SinkConsumer(ctx)
	if cerr != nil {
		s.log.Error("consumer gone and not recreated; retrying", "err", cerr)
		return cons
	}
	s.log.Warn("consumer was gone; recreated", "cause", err)
	return c
}

type item struct {
	msg jetstream.Msg
	in  *store.Prepared
	ref string // claim check to release after commit
}

// prepare decodes msgs and resolves their claim checks. Messages it can
// settle on its own (dead letters, bad events, transcripts stored already)
// are settled here; the rest go to emit in order, in batches of at most
// MaxBatchBytes of transcripts, so that a run of 10-hour transcripts is
// held a few at a time rather than a whole fetch at once.
func (s *Sink) prepare(ctx context.Context, msgs []jetstream.Msg, emit func([]item)) {
	var items []item
	size := 0
	for _, m := range msgs {
		ev, err := event.Decode(m.Data())
		if err != nil {
			s.deadLetter(ctx, m, err)
			continue
		}
		if ev.Type == event.TypeDeadLetter || ev.Type == event.TypeReplayed {
			s.record(ctx, m, ev)
			continue
		}
		ref := ev.PayloadRef
		full, err := s.q.Resolve(ctx, ev)
		if errors.Is(err, queue.ErrPayloadMissing) {
			// Released after an earlier commit whose ack was lost: the
			// transcript is already stored. Otherwise it is really gone.
			if ok, herr := s.st.HasTranscript(ctx, ev.RequestID); herr == nil && ok {
				_ = m.Ack()
				continue
			}
			s.deadLetter(ctx, m, err)
			continue
		}
		if err != nil {
			s.retryLater(m, err)
			continue
		}
		in, err := store.Prepare(full)
		if err != nil {
			s.deadLetter(ctx, m, err)
			continue
		}
		if len(items) > 0 && size+len(full.Transcription) > s.cfg.MaxBatchBytes {
			emit(items)
			items, size = nil, 0
		}
		items = append(items, item{msg: m, in: in, ref: ref})
		size += len(full.Transcription)
	}
	if len(items) > 0 {
		emit(items)
	}
}

// apply commits items in one transaction, then acknowledges them.
func (s *Sink) apply(ctx context.Context, items []item) {
	in := make([]*store.Prepared, len(items))
	for i, it := range items {
		in[i] = it.in
	}
	start := time.Now()
	err := s.st.ApplyPrepared(ctx, in)
	s.cfg.Metrics.Commit(len(in), time.Since(start), err)
	if err == nil {
		s.done(ctx, items)
		return
	}
	if !permanent(err) {
		s.log.Warn("apply batch failed; will retry", "events", len(items), "err", err)
		for _, it := range items {
			s.retryLater(it.msg, err)
		}
		return
	}
	// One bad event must not hold up the rest: apply them one by one and
	// dead-letter the ones that fail for good.
	s.log.Warn("apply batch failed; isolating the bad events", "events", len(items), "err", err)
	for _, it := range items {
		start := time.Now()
		err := s.st.ApplyPrepared(ctx, []*store.Prepared{it.in})
		s.cfg.Metrics.Commit(1, time.Since(start), err)
		switch {
		case err == nil:
			s.done(ctx, []item{it})
		case permanent(err):
			s.deadLetter(ctx, it.msg, err)
		default:
			s.retryLater(it.msg, err)
		}
	}
}

// record keeps another worker's dead letter, or an operator's replay of one.
func (s *Sink) record(ctx context.Context, m jetstream.Msg, ev *event.Event) {
	d := ev.DeadLetter
	var err error
	if ev.Type == event.TypeReplayed {
		err = s.st.MarkReplayed(ctx, d.ID, ev.At)
	} else {
		msgID := d.MsgID
		if msgID == "" {
			msgID = fmt.Sprintf("seq:%d", d.Seq)
		}
		err = s.st.DeadLetter(ctx, store.DeadLetter{
			Stream: d.Stream, Subject: d.Subject, MsgID: msgID, Headers: d.Headers,
			Data: d.Data, Err: d.Error, Attempts: d.Attempts,
		})
	}
	if err != nil {
		s.retryLater(m, err)
		return
	}
	_ = m.Ack()
}

func (s *Sink) done(ctx context.Context, items []item) {
	for _, it := range items {
		s.cfg.Metrics.Applied(it.in.Type)
		if err := it.msg.Ack(); err != nil {
			// The commit stands; a redelivery is a harmless replay.
			s.log.Warn("ack after commit failed", append(msgJobAttrs(it.msg), "err", err)...)
			continue
		}
		if it.ref != "" {
			if err := s.q.ReleasePayload(ctx, it.ref); err != nil {
				s.log.Warn("release claim check", append(msgJobAttrs(it.msg), "ref", it.ref, "err", err)...)
			}
		}
	}
	s.log.Debug("batch committed", "events", len(items))
}

// retryLater gives a message back for a later delivery. An outage (the
// database or NATS unreachable) is waited out however long it lasts: giving
// up would bury good events. Any other error counts against MaxAttempts,
// after which the message is dead-lettered.
func (s *Sink) retryLater(m jetstream.Msg, err error) {
	md, mdErr := m.Metadata()
	delivered := 1
	if mdErr == nil {
		delivered = int(md.NumDelivered)
	}
	if !outage(err) && delivered >= s.cfg.MaxAttempts {
		s.deadLetter(context.Background(), m, fmt.Errorf("gave up after %d deliveries: %w", delivered, err))
		return
	}
	_ = m.NakWithDelay(min(time.Duration(delivered)*2*time.Second, time.Minute))
}

// deadLetter records a message that can never be applied, then terminates
// it. If the record cannot be written the message is left for redelivery:
// dropping it would lose it.
func (s *Sink) deadLetter(ctx context.Context, m jetstream.Msg, cause error) {
	attempts := 0
	if md, err := m.Metadata(); err == nil {
		attempts = int(md.NumDelivered)
	}
	d := store.DeadLetter{
		Stream:   event.StreamEvents,
		Subject:  m.Subject(),
		MsgID:    m.Headers().Get("Nats-Msg-Id"),
		Headers:  m.Headers(),
		Data:     m.Data(),
		Err:      cause.Error(),
		Attempts: attempts,
	}
	if err := s.st.DeadLetter(ctx, d); err != nil {
		s.log.Error("could not write dead letter; message kept", append(msgJobAttrs(m), "err", err, "cause", cause)...)
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	s.cfg.Metrics.DeadLettered()
	s.log.Error("event dead-lettered", append(msgJobAttrs(m), "subject", m.Subject(), "msg_id", d.MsgID, "err", cause)...)
	_ = m.TermWithReason(truncate(cause.Error(), 200))
}

// permanent reports whether retrying err can never help: bad data, not a
// database or network outage.
func permanent(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23", "42": // data exception, integrity violation, syntax/undefined
			return true
		}
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return false
	}
	return errors.Is(err, store.ErrInvalidEvent)
}

// outage reports whether err means a dependency is unreachable, as opposed
// to something wrong with the message.
func outage(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		// 08: connection exception; 57P: operator intervention (shutdown).
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	case errors.As(err, &netErr), errors.As(err, &connErr), pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return true
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse):
		return true
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
