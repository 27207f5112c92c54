// Package query is the read side: the SQL behind `scribeq status` and
// `scribeq show`. Every connection is read-only, so a query command can be
// given a role that cannot write and still do its whole job.
package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound means nothing matched.
var ErrNotFound = errors.New("not found")

// DB runs read-only queries.
type DB struct {
	pool       *pgxpool.Pool
	candidates int // SearchCandidates; tests lower it
}

// Open connects with default_transaction_read_only on.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("query: parse database url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "30000"
	// Plan every statement for its actual arguments. A generic plan (which
	// Postgres may switch to after five runs of a prepared statement)
	// cannot tell a rare word from one in half the transcripts, nor a
	// filter keeping one job from one keeping all: for search that is the
	// difference between milliseconds and seconds.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("query: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("query: connect to postgres: %w", err)
	}
	return &DB{pool: pool, candidates: SearchCandidates}, nil
}

// Close releases the connections.
func (d *DB) Close() { d.pool.Close() }

// States lists job states in the order they are shown.
var States = []string{"queued", "submitted", "completed", "failed", "canceled"}

// Status counts jobs by state; every state is present, zero or not.
func (d *DB) Status(ctx context.Context) (map[string]int64, error) {
	counts := make(map[string]int64, len(States))
	for _, s := range States {
		counts[s] = 0
	}
	rows, err := d.pool.Query(ctx, `SELECT state, count(*) FROM jobs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("query: count jobs by state: %w", err)
	}
	var state string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&state, &n}, func() error {
		counts[state] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query: count jobs by state: %w", err)
	}
	return counts, nil
}

// Job is one job with its transcript and history, as `show` prints it.
type Job struct {
	JobID           string          `json:"job_id"`
	BatchID         *string         `json:"batch_id,omitempty"`
	State           string          `json:"state"`
	RequestID       *string         `json:"request_id,omitempty"`
	TranscriptionID *string         `json:"transcription_id,omitempty"`
	Source          json.RawMessage `json:"source"`
	Options         json.RawMessage `json:"options"`
	Metadata        json.RawMessage `json:"metadata"`
	Error           *string         `json:"error,omitempty"`
	ConvertCalls    int             `json:"convert_calls"`
	QueuedAt        *time.Time      `json:"queued_at,omitempty"`
	SubmittedAt     *time.Time      `json:"submitted_at,omitempty"`
	CompletedAt     *time.Time      `json:"completed_at,omitempty"`
	FailedAt        *time.Time      `json:"failed_at,omitempty"`
	Transcript      *Transcript     `json:"transcript,omitempty"`
	History         []Transition    `json:"history"`
}

// Transcript is the stored result of a job.
type Transcript struct {
	RequestID           string          `json:"request_id"`
	LanguageCode        *string         `json:"language_code,omitempty"`
	LanguageProbability *float64        `json:"language_probability,omitempty"`
	AudioDurationSecs   *float64        `json:"audio_duration_secs,omitempty"`
	Text                string          `json:"text"`
	Words               json.RawMessage `json:"words,omitempty"`
	ReceivedAt          time.Time       `json:"received_at"`
}

// Transition is one entry of a job's history.
type Transition struct {
	From    *string   `json:"from,omitempty"`
	To      string    `json:"to"`
	Reason  *string   `json:"reason,omitempty"`
	Process *string   `json:"process,omitempty"`
	At      time.Time `json:"at"`
}

// Show finds a job by job id, request id or source path (the most recent
// job for that path) and returns it with its transcript and history.
func (d *DB) Show(ctx context.Context, key string, withWords bool) (*Job, error) {
	var j Job
	err := d.pool.QueryRow(ctx, `
		SELECT job_id, batch_id, state, request_id, transcription_id, source, options, metadata,
		       error, convert_calls, queued_at, submitted_at, completed_at, failed_at
		FROM jobs
		WHERE job_id = $1 OR request_id = $1 OR source->>'path' = $1 OR source->>'url' = $1
		ORDER BY (job_id = $1) DESC, (request_id = $1) DESC, created_at DESC
		LIMIT 1`, key).Scan(
		&j.JobID, &j.BatchID, &j.State, &j.RequestID, &j.TranscriptionID, &j.Source, &j.Options, &j.Metadata,
		&j.Error, &j.ConvertCalls, &j.QueuedAt, &j.SubmittedAt, &j.CompletedAt, &j.FailedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("query: show %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("query: show %q: %w", key, err)
	}
	var t Transcript
	words := "NULL::jsonb"
	if withWords {
		words = "words"
	}
	err = d.pool.QueryRow(ctx, `
		SELECT request_id, language_code, language_probability, audio_duration_secs, text, `+words+`, received_at
		FROM transcripts WHERE job_id = $1 OR request_id = $2
		ORDER BY received_at DESC LIMIT 1`, j.JobID, j.RequestID).Scan(
		&t.RequestID, &t.LanguageCode, &t.LanguageProbability, &t.AudioDurationSecs, &t.Text, &t.Words, &t.ReceivedAt)
	switch {
	case err == nil:
		j.Transcript = &t
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("query: transcript of job %s: %w", j.JobID, err)
	}
	rows, err := d.pool.Query(ctx, `
		SELECT from_state, to_state, reason, process, at FROM job_events
		WHERE job_id = $1 ORDER BY at, id`, j.JobID)
	if err != nil {
		return nil, fmt.Errorf("query: history of job %s: %w", j.JobID, err)
	}
	j.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Transition, error) {
		var tr Transition
		err := r.Scan(&tr.From, &tr.To, &tr.Reason, &tr.Process, &tr.At)
		return tr, err
	})
	if err != nil {
		return nil, fmt.Errorf("query: history of job %s: %w", j.JobID, err)
	}
	if j.History == nil {
		j.History = []Transition{}
	}
	return &j, nil
}

// Pending reports how many jobs are not yet completed, failed or canceled
// among those whose ids are given (all jobs when ids is empty).
func (d *DB) Pending(ctx context.Context, ids []string) (pending int64, err error) {
	if len(ids) == 0 {
		err = d.pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE state IN ('queued','submitted')`).Scan(&pending)
	} else {
		// Jobs the sink has not recorded yet count as pending too.
		err = d.pool.QueryRow(ctx, `
			SELECT cardinality($1::text[]) - count(*) FILTER (WHERE state IN ('completed','failed','canceled'))
			FROM jobs WHERE job_id = ANY($1)`, ids).Scan(&pending)
	}
	if err != nil {
		return 0, fmt.Errorf("query: count pending jobs: %w", err)
	}
	return pending, nil
}
