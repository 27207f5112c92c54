package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeadLetter is a message kept because it could never be processed.
type DeadLetter struct {
	ID         int64           `json:"id"`
	Stream     string          `json:"stream"`
	Subject    string          `json:"subject"`
	MsgID      *string         `json:"msg_id,omitempty"`
	Headers    json.RawMessage `json:"headers,omitempty"`
	Data       []byte          `json:"data,omitempty"`
	Error      string          `json:"error"`
	Attempts   int             `json:"attempts"`
	CreatedAt  time.Time       `json:"created_at"`
	ReplayedAt *time.Time      `json:"replayed_at,omitempty"`
}

// DeadLetters lists dead letters, newest first, without their bytes;
// replayed ones only when all is set.
func (d *DB) DeadLetters(ctx context.Context, limit int, all bool) ([]DeadLetter, error) {
	rows, err := d.pool.Query(ctx, `
		SELECT id, stream, subject, msg_id, error, attempts, created_at, replayed_at
		FROM dead_letters WHERE $2 OR replayed_at IS NULL
		ORDER BY id DESC LIMIT $1`, limit, all)
	if err != nil {
		return nil, fmt.Errorf("query: list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var x DeadLetter
		err := r.Scan(&x.ID, &x.Stream, &x.Subject, &x.MsgID, &x.Error, &x.Attempts, &x.CreatedAt, &x.ReplayedAt)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("query: list dead letters: %w", err)
	}
	return out, nil
}

// DeadLetter returns one dead letter with its headers and bytes.
func (d *DB) DeadLetter(ctx context.Context, id int64) (*DeadLetter, error) {
	var x DeadLetter
	err := d.pool.QueryRow(ctx, `
		SELECT id, stream, subject, msg_id, headers, data, error, attempts, created_at, replayed_at
		FROM dead_letters WHERE id = $1`, id).Scan(
		&x.ID, &x.Stream, &x.Subject, &x.MsgID, &x.Headers, &x.Data, &x.Error, &x.Attempts, &x.CreatedAt, &x.ReplayedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("query: dead letter %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("query: dead letter %d: %w", id, err)
	}
	return &x, nil
}
