package query

import "context"

// Exec lets tests prove the connection refuses writes.
func (d *DB) Exec(ctx context.Context, sql string) error {
	_, err := d.pool.Exec(ctx, sql)
	return err
}
