package query

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// JobRef is what operator commands need to act on a job.
type JobRef struct {
	JobID           string
	BatchID         *string
	State           string
	Attempts        int
	RequestID       *string
	TranscriptionID *string
	Source          json.RawMessage
	Options         json.RawMessage
	Metadata        json.RawMessage
}

// JobRefs returns the jobs with the given ids, or, with no ids, every job in
// state (and in batch, by id or name, when given).
func (d *DB) JobRefs(ctx context.Context, ids []string, state, batch string) ([]JobRef, error) {
	rows, err := d.pool.Query(ctx, `
		SELECT job_id, batch_id, state, attempts, request_id, transcription_id, source, options, metadata
		FROM jobs
		WHERE CASE WHEN cardinality($1::text[]) > 0 THEN job_id = ANY($1)
		           ELSE state = $2 AND ($3 = '' OR batch_id = $3
		                                 OR batch_id IN (SELECT batch_id FROM batches WHERE name = $3)) END
		ORDER BY created_at, job_id`, ids, state, batch)
	if err != nil {
		return nil, fmt.Errorf("query: jobs: %w", err)
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (JobRef, error) {
		var j JobRef
		err := r.Scan(&j.JobID, &j.BatchID, &j.State, &j.Attempts, &j.RequestID, &j.TranscriptionID, &j.Source, &j.Options, &j.Metadata)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("query: jobs: %w", err)
	}
	return refs, nil
}
