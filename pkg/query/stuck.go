package query

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// StuckJob is a job that has waited in `submitted` longer than its
// webhook should have taken.
type StuckJob struct {
	JobID string
	// RequestID is the convert call's request id.
	RequestID string
	// TranscriptionID is empty when neither the convert answer nor a
	// webhook has told us it, so the transcript cannot be fetched.
	TranscriptionID string
	SubmittedAt     time.Time
	// DurationSecs is jobs.source->>'duration_secs'; 0 when unknown.
	DurationSecs float64
}

// StuckCursor is the position after which the next page starts: pages are
// ordered by (submitted_at, job_id).
type StuckCursor struct {
	SubmittedAt time.Time
	JobID       string
}

// StuckFilter selects stuck jobs. A job is stuck once it has been in
// `submitted` for max(MinAge, Base + PerAudioSecond × its duration in
// seconds), an unknown duration counting as 0.
type StuckFilter struct {
	// Now is the caller's clock (not the database's), so tests can move it.
	Now            time.Time
	MinAge         time.Duration
	Base           time.Duration
	PerAudioSecond time.Duration
	// After starts the page after this position; nil starts at the oldest.
	After *StuckCursor
	// Limit caps the page. Default 500.
	Limit int
}

// durationSQL reads the audio duration without failing on a value that is
// not a number (older or foreign rows): those count as unknown.
const durationSQL = `CASE WHEN jsonb_typeof(source->'duration_secs') = 'number'
	THEN (source->>'duration_secs')::float8 ELSE 0 END`

// Stuck returns one page of stuck jobs, oldest submission first. The
// threshold is applied in SQL so that jobs that are not due yet never take
// a page's room from jobs that are.
func (d *DB) Stuck(ctx context.Context, f StuckFilter) ([]StuckJob, error) {
	if f.Limit <= 0 {
		f.Limit = 500
	}
	afterAt, afterID := time.Time{}, ""
	if f.After != nil {
		afterAt, afterID = f.After.SubmittedAt, f.After.JobID
	}
	rows, err := d.pool.Query(ctx, `
		SELECT job_id, coalesce(request_id, ''), coalesce(transcription_id, ''), submitted_at, dur
		FROM (SELECT job_id, request_id, transcription_id, submitted_at, `+durationSQL+` AS dur
		      FROM jobs WHERE state = 'submitted' AND submitted_at IS NOT NULL) j
		WHERE submitted_at <= $1::timestamptz
		        - make_interval(secs => greatest($2::float8, $3::float8 + $4::float8 * greatest(dur, 0)))
		  AND ($5::boolean IS FALSE OR (submitted_at, job_id) > ($6::timestamptz, $7::text))
		ORDER BY submitted_at, job_id
		LIMIT $8`,
		f.Now, f.MinAge.Seconds(), f.Base.Seconds(), f.PerAudioSecond.Seconds(),
		f.After != nil, afterAt, afterID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("query: stuck jobs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StuckJob, error) {
		var j StuckJob
		err := r.Scan(&j.JobID, &j.RequestID, &j.TranscriptionID, &j.SubmittedAt, &j.DurationSecs)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("query: stuck jobs: %w", err)
	}
	return out, nil
}
