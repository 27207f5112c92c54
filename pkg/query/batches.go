package query

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BatchRow is one submit call with its jobs' progress and cost.
type BatchRow struct {
	BatchID   string    `json:"batch_id"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Counts has every state of States, zero or not.
	Counts map[string]int64 `json:"counts"`
	Total  int64            `json:"total"`
	// AudioSecs sums the audio durations of all jobs (actual or estimated);
	// UnknownDurations counts the jobs whose duration is not known.
	AudioSecs        float64 `json:"audio_secs"`
	UnknownDurations int64   `json:"unknown_durations,omitempty"`
	// Cost is what the completed jobs cost, by currency. EstimatedCost
	// adds the jobs still queued or submitted (at intake's duration until
	// they complete); failed and canceled jobs are left out of both.
	Cost          map[string]float64 `json:"cost,omitempty"`
	EstimatedCost map[string]float64 `json:"estimated_cost,omitempty"`
	LastCompleted *time.Time         `json:"last_completed,omitempty"`
}

// Batches lists every batch, newest first.
func (d *DB) Batches(ctx context.Context) ([]BatchRow, error) {
	rows, err := d.pool.Query(ctx, `
		SELECT b.batch_id, coalesce(b.name, ''), b.created_at, s.state, coalesce(s.currency, ''), count(*),
		       coalesce(sum(s.audio_secs), 0), count(*) FILTER (WHERE s.audio_secs IS NULL),
		       sum(s.cost) FILTER (WHERE s.state = 'completed')::float8,
		       sum(s.cost) FILTER (WHERE s.state IN ('queued', 'submitted', 'completed'))::float8,
		       max(s.completed_at)
		FROM batches b JOIN job_summary s ON s.batch_id = b.batch_id
		GROUP BY b.batch_id, s.state, s.currency
		ORDER BY b.created_at DESC, b.batch_id`)
	if err != nil {
		return nil, fmt.Errorf("query: batches: %w", err)
	}
	var (
		out                 []BatchRow
		id, name, state, cu string
		created             time.Time
		n, unknown          int64
		secs                float64
		cost, estimated     *float64
		lastCompleted       *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &name, &created, &state, &cu, &n, &secs, &unknown, &cost, &estimated, &lastCompleted},
		func() error {
			if len(out) == 0 || out[len(out)-1].BatchID != id {
				out = append(out, BatchRow{BatchID: id, Name: name, CreatedAt: created, Counts: zeroCounts(),
					Cost: map[string]float64{}, EstimatedCost: map[string]float64{}})
			}
			b := &out[len(out)-1]
			b.Counts[state] += n
			b.Total += n
			b.AudioSecs += secs
			b.UnknownDurations += unknown
			if cost != nil {
				b.Cost[cu] += *cost
			}
			if estimated != nil {
				b.EstimatedCost[cu] += *estimated
			}
			if lastCompleted != nil && (b.LastCompleted == nil || lastCompleted.After(*b.LastCompleted)) {
				t := *lastCompleted
				b.LastCompleted = &t
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("query: batches: %w", err)
	}
	return out, nil
}

func zeroCounts() map[string]int64 {
	m := make(map[string]int64, len(States))
	for _, s := range States {
		m[s] = 0
	}
	return m
}

// Progress is where the jobs a filter selects stand, for `scribeq watch`.
type Progress struct {
	// Counts has every state of States, zero or not.
	Counts map[string]int64 `json:"counts"`
	Total  int64            `json:"total"`
	// Done counts the jobs in a final state: completed, failed or canceled.
	Done int64 `json:"done"`
	// AudioSecs sums the known durations of all jobs, AudioSecsDone those
	// of completed jobs: a rate in audio seconds per second gives an ETA
	// that long and short files do not skew.
	AudioSecs     float64    `json:"audio_secs"`
	AudioSecsDone float64    `json:"audio_secs_done"`
	FirstQueued   *time.Time `json:"first_queued,omitempty"`
	LastCompleted *time.Time `json:"last_completed,omitempty"`
	// LastFinished is the latest completion or failure.
	LastFinished *time.Time `json:"last_finished,omitempty"`
}

// BatchProgress counts the jobs f selects by state, with the first queued
// time and the last completion, so a caller polling it can show a rate and
// an ETA. Jobs the sink has not recorded yet are not counted: a caller
// that knows how many it submitted should compare Total with that.
func (d *DB) BatchProgress(ctx context.Context, f Filter) (*Progress, error) {
	var p params
	where, err := f.where(&p, "s")
	if err != nil {
		return nil, err
	}
	rows, err := d.pool.Query(ctx, `
		SELECT s.state, count(*), coalesce(sum(s.audio_secs), 0), min(s.queued_at), max(s.completed_at),
		       greatest(max(s.completed_at), max(s.failed_at))
		FROM job_summary s WHERE `+where+`
		GROUP BY s.state`, p...)
	if err != nil {
		return nil, fmt.Errorf("query: batch progress: %w", err)
	}
	pr := &Progress{Counts: zeroCounts()}
	var (
		state               string
		n                   int64
		secs                float64
		first, last, finish *time.Time
		earliest            = func(a, b *time.Time) *time.Time { return pick(a, b, b != nil && (a == nil || b.Before(*a))) }
		latest              = func(a, b *time.Time) *time.Time { return pick(a, b, b != nil && (a == nil || b.After(*a))) }
		finalStates         = map[string]bool{"completed": true, "failed": true, "canceled": true}
	)
	_, err = pgx.ForEachRow(rows, []any{&state, &n, &secs, &first, &last, &finish}, func() error {
		pr.Counts[state] += n
		pr.Total += n
		pr.AudioSecs += secs
		if state == "completed" {
			pr.AudioSecsDone += secs
		}
		if finalStates[state] {
			pr.Done += n
		}
		pr.FirstQueued = earliest(pr.FirstQueued, first)
		pr.LastCompleted = latest(pr.LastCompleted, last)
		pr.LastFinished = latest(pr.LastFinished, finish)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query: batch progress: %w", err)
	}
	return pr, nil
}

// pick returns a copy of b if useB, else a.
func pick(a, b *time.Time, useB bool) *time.Time {
	if !useB {
		return a
	}
	t := *b
	return &t
}
