package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// backfillBatch is how many transcripts one backfill transaction chunks.
const backfillBatch = 100

// buildMissingChunks builds the search chunks of every transcript whose
// chunks_version is NULL: those stored before migration 00002, or by an
// older binary during a rolling upgrade. With nothing to do it costs one
// probe of a partial index that is empty.
//
// Several workers may start (and migrate) at once: each takes the rows it
// works on FOR UPDATE SKIP LOCKED, so they share the work, then makes a
// last pass that waits for rows others hold, so none is left behind. The
// sink's only write to an existing transcript (linking its job) takes the
// same row lock, so a chunk's job_id cannot miss the link.
func buildMissingChunks(ctx context.Context, url string, w io.Writer) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return errors.New("store: build search chunks: cannot connect")
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var pending bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM transcripts WHERE chunks_version IS NULL)`).Scan(&pending); err != nil {
		return fmt.Errorf("store: build search chunks: %w", err)
	}
	if !pending {
		return nil
	}
	total, skipped := 0, 0
	for _, wait := range []bool{false, true} {
		for {
			n, bad, err := chunkSome(ctx, conn, wait)
			if err != nil {
				return fmt.Errorf("store: build search chunks: %w", err)
			}
			total += n
			skipped += bad
			if n == 0 {
				break
			}
		}
	}
	_, _ = fmt.Fprintf(w, "built search chunks for %d transcripts\n", total)
	if skipped > 0 {
		_, _ = fmt.Fprintf(w, "%d transcripts have words that cannot be decoded; they cannot be searched\n", skipped)
	}
	return nil
}

// chunkSome chunks up to backfillBatch transcripts in one transaction and
// returns how many it handled and how many of those could not be decoded.
func chunkSome(ctx context.Context, conn *pgx.Conn, wait bool) (n, bad int, err error) {
	lock := "FOR UPDATE SKIP LOCKED"
	if wait {
		lock = "FOR UPDATE"
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		n, bad = 0, 0
		rows, err := tx.Query(ctx, `SELECT request_id, job_id, language_code, words FROM transcripts
			WHERE chunks_version IS NULL ORDER BY request_id LIMIT $1 `+lock, backfillBatch)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		var (
			req       string
			job, lang *string
			raw       []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&req, &job, &lang, &raw}, func() error {
			n++
			var words []elevenlabs.Word
			if err := json.Unmarshal(raw, &words); err != nil {
				// Marked as done all the same: retrying cannot decode it.
				bad++
				words = nil
			}
			b.Queue(`DELETE FROM transcript_chunks WHERE request_id = $1`, req)
			if r := toRows(chunkWords(words)); len(r.seq) > 0 {
				b.Queue(insertChunksSQL, r.args(req, job, lang)...)
			}
			b.Queue(`UPDATE transcripts SET chunks_version = $2 WHERE request_id = $1`, req, chunksVersion)
			return nil
		})
		if err != nil || n == 0 {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
	return n, bad, err
}
