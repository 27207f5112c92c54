package query

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Exec lets tests prove the connection refuses writes.
func (d *DB) Exec(ctx context.Context, sql string) error {
	_, err := d.pool.Exec(ctx, sql)
	return err
}

// ExplainSearch returns the plan of the statement Search would run for q
// (EXPLAIN with opts, e.g. "ANALYZE, BUFFERS"), with sequential scans
// discouraged when noSeqScan is set (a tiny test table would otherwise
// never use an index).
func (d *DB) ExplainSearch(ctx context.Context, q string, f Filter, opts string, noSeqScan bool) (string, error) {
	cfgs, err := d.searchConfigs(ctx, q)
	if err != nil {
		return "", err
	}
	sql, p, err := searchSQL(cfgs, f, 20, d.candidates)
	if err != nil {
		return "", err
	}
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if noSeqScan {
		if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			return "", err
		}
	}
	explain := "EXPLAIN "
	if opts != "" {
		explain = "EXPLAIN (" + opts + ") "
	}
	rows, err := tx.Query(ctx, explain+sql, p...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

// SetSearchCandidates lowers SearchCandidates for d.
func (d *DB) SetSearchCandidates(n int) { d.candidates = n }
