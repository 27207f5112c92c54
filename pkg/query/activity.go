package query

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Interval is what finished in one interval of Throughput.
type Interval struct {
	Start     time.Time `json:"start"`
	Completed int64     `json:"completed"`
	Failed    int64     `json:"failed"`
	// AudioSecs sums the audio durations of the jobs that completed.
	AudioSecs float64 `json:"audio_secs"`
}

// Throughput counts the jobs that completed or failed in each step-long
// interval of [since, until), oldest first. Every interval is present, with
// zeros where nothing finished, so a caller can chart the result as it is.
// Intervals start at since, which is rounded down to a multiple of step.
func (d *DB) Throughput(ctx context.Context, since, until time.Time, step time.Duration) ([]Interval, error) {
	if step <= 0 || !until.After(since) {
		return nil, fmt.Errorf("query: throughput: want a positive step and since before until, got %s, %s..%s", step, since, until)
	}
	since = since.Truncate(step)
	n := int((until.Sub(since) + step - 1) / step)
	if n > 10_000 {
		return nil, fmt.Errorf("query: throughput: %d intervals is too many", n)
	}
	out := make([]Interval, n)
	for i := range out {
		out[i].Start = since.Add(time.Duration(i) * step)
	}
	rows, err := d.pool.Query(ctx, `
		SELECT floor(extract(epoch FROM x.at - $1::timestamptz) / $3::float8)::int AS i,
		       count(*) FILTER (WHERE x.state = 'completed'), count(*) FILTER (WHERE x.state = 'failed'),
		       coalesce(sum(x.secs) FILTER (WHERE x.state = 'completed'), 0)
		FROM (SELECT s.state, CASE s.state WHEN 'completed' THEN s.completed_at ELSE s.failed_at END AS at,
		             s.audio_secs AS secs
		      FROM job_summary s
		      WHERE s.state IN ('completed', 'failed') AND (s.completed_at >= $1 OR s.failed_at >= $1)) x
		WHERE x.at >= $1 AND x.at < $2
		GROUP BY 1`, since, until, step.Seconds())
	if err != nil {
		return nil, fmt.Errorf("query: throughput: %w", err)
	}
	var (
		i                 int
		completed, failed int64
		secs              float64
	)
	_, err = pgx.ForEachRow(rows, []any{&i, &completed, &failed, &secs}, func() error {
		if i >= 0 && i < n {
			out[i].Completed, out[i].Failed, out[i].AudioSecs = completed, failed, secs
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query: throughput: %w", err)
	}
	return out, nil
}

// DeadLetterCount counts the dead letters not yet replayed.
func (d *DB) DeadLetterCount(ctx context.Context) (int64, error) {
	var n int64
	if err := d.pool.QueryRow(ctx, `SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("query: count dead letters: %w", err)
	}
	return n, nil
}
