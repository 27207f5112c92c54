// Package slots is a concurrency limit shared by every submitter replica,
// counted the way ElevenLabs counts it: a job holds its slots from the
// convert call until its webhook arrives (or a deadline passes), a file
// longer than 8 minutes takes up to 4 slots, and each channel of a
// multichannel file takes its own.
//
// The state is one JetStream KV entry updated with compare-and-set, so any
// number of processes share it without a coordinator. The limit adapts
// (AIMD): it halves on a "too many concurrent requests" answer and grows back
// by one slot per accepted call, up to the configured maximum.
package slots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const stateKey = "state"

// Config configures a Limiter.
type Config struct {
	// Max is the plan's concurrency (ElevenLabs: 10 Free … 75 Scale). Default 10.
	Max int
	// Hold is how long an accepted job keeps its slots when no webhook
	// arrives, on top of the estimated processing time. Default 10 minutes.
	Hold time.Duration
	// Poll is how often a waiting acquirer looks again (it also wakes on
	// every change). Default 500ms.
	Poll time.Duration
	// Logger; default discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Cost is the number of slots a job uses: min(4, ceil(duration/480 s)) per
// channel; unknown durations count as one slot per channel.
func Cost(durationSecs float64, channels int) int {
	if channels < 1 {
		channels = 1
	}
	per := 1
	if durationSecs > 0 {
		per = min(4, int(math.Ceil(durationSecs/480)))
	}
	return per * channels
}

// Limiter hands out slots.
type Limiter struct {
	kv  jetstream.KeyValue
	cfg Config
	log *slog.Logger
}

type holding struct {
	Cost  int       `json:"cost"`
	Until time.Time `json:"until"`
}

type state struct {
	// Limit is the current adaptive limit, at most Max.
	Limit float64            `json:"limit"`
	Jobs  map[string]holding `json:"jobs"`
}

// prune forgets holdings whose deadline passed and returns how many.
func (s *state) prune(now time.Time) int {
	n := 0
	for id, h := range s.Jobs {
		if now.After(h.Until) {
			delete(s.Jobs, id)
			n++
		}
	}
	return n
}

func (s *state) used() int {
	n := 0
	for _, h := range s.Jobs {
		n += h.Cost
	}
	return n
}

// New returns a Limiter over kv (the SLOTS bucket).
func New(kv jetstream.KeyValue, cfg Config) *Limiter {
	if cfg.Max <= 0 {
		cfg.Max = 10
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 10 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{kv: kv, cfg: cfg, log: cfg.Logger}
}

// update applies fn to the shared state with compare-and-set, retrying on
// conflicts. fn returns false to leave the state unchanged.
func (l *Limiter) update(ctx context.Context, fn func(*state) bool) error {
	for {
		var st state
		var rev uint64
		e, err := l.kv.Get(ctx, stateKey)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("slots: read state: %w", err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				l.log.Warn("slots: unreadable state reset", "err", err)
				st = state{}
			}
		}
		if st.Jobs == nil {
			st.Jobs = map[string]holding{}
		}
		if st.Limit <= 0 || st.Limit > float64(l.cfg.Max) {
			st.Limit = float64(l.cfg.Max)
		}
		if !fn(&st) {
			return nil
		}
		b, _ := json.Marshal(&st)
		if rev == 0 {
			_, err = l.kv.Create(ctx, stateKey, b)
		} else {
			_, err = l.kv.Update(ctx, stateKey, b, rev)
		}
		if err == nil {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("slots: write state: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}

// Acquire blocks until cost slots are free for jobID, then holds them until
// Release or until hold (plus Config.Hold) has passed. A job that already
// holds slots keeps them (a redelivery does not count twice).
func (l *Limiter) Acquire(ctx context.Context, jobID string, cost int, hold time.Duration) error {
	waited := false
	for {
		got := false
		err := l.update(ctx, func(st *state) bool {
			got = false // fn reruns after a lost compare-and-set
			now := l.cfg.Now()
			pruned := st.prune(now)
			if _, ok := st.Jobs[jobID]; ok {
				got = true
				return pruned > 0
			}
			// A job costlier than the whole limit still runs, alone.
			if used := st.used(); used+cost > int(st.Limit) && used > 0 {
				return pruned > 0
			}
			st.Jobs[jobID] = holding{Cost: cost, Until: now.Add(hold + l.cfg.Hold)}
			got = true
			return true
		})
		if err != nil {
			return err
		}
		if got {
			if waited {
				l.log.Debug("slots acquired after waiting", "job_id", jobID, "cost", cost)
			}
			return nil
		}
		waited = true
		if err := l.wait(ctx); err != nil {
			return err
		}
	}
}

// wait returns on the next change of the state or after Poll.
func (l *Limiter) wait(ctx context.Context) error {
	w, err := l.kv.Watch(ctx, stateKey, jetstream.UpdatesOnly())
	if err != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(l.cfg.Poll):
			return nil
		}
	}
	defer func() { _ = w.Stop() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.Updates():
	case <-time.After(l.cfg.Poll):
	}
	return nil
}

// Release frees jobID's slots; releasing what is not held is a no-op.
func (l *Limiter) Release(ctx context.Context, jobID string) error {
	return l.update(ctx, func(st *state) bool {
		if _, ok := st.Jobs[jobID]; !ok {
			return false
		}
		delete(st.Jobs, jobID)
		return true
	})
}

// Accepted grows the limit by one slot (additive increase).
func (l *Limiter) Accepted(ctx context.Context) error {
	return l.update(ctx, func(st *state) bool {
		if st.Limit >= float64(l.cfg.Max) {
			return false
		}
		st.Limit = min(float64(l.cfg.Max), st.Limit+1)
		return true
	})
}

// TooMany halves the limit (multiplicative decrease) after ElevenLabs said
// too many requests are in flight; providerMax, when the answer carried
// maximum-concurrent-requests, caps it too.
func (l *Limiter) TooMany(ctx context.Context, providerMax int) error {
	return l.update(ctx, func(st *state) bool {
		next := max(1, math.Floor(st.Limit/2))
		if providerMax > 0 {
			next = min(next, float64(providerMax))
		}
		if next == st.Limit {
			return false
		}
		l.log.Warn("ElevenLabs reports too many concurrent requests: lowering the limit", "from", st.Limit, "to", next)
		st.Limit = next
		return true
	})
}

// Usage reports slots in use and the current limit.
func (l *Limiter) Usage(ctx context.Context) (used int, limit int, err error) {
	err = l.update(ctx, func(st *state) bool {
		st.prune(l.cfg.Now())
		used, limit = st.used(), int(st.Limit)
		return false
	})
	return used, limit, err
}

// ReleaseOnWebhooks frees a job's slots as soon as the ingress marks its
// webhook stored (the WEBHOOKS bucket), until ctx is canceled.
func (l *Limiter) ReleaseOnWebhooks(ctx context.Context, webhooks jetstream.KeyValue) error {
	w, err := webhooks.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("slots: watch webhooks: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			if err := l.Release(ctx, e.Key()); err != nil && ctx.Err() == nil {
				l.log.Warn("release slots on webhook", "job_id", e.Key(), "err", err)
			}
		}
	}
}
