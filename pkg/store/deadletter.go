package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DeadLetter is a message that can never be processed, kept with its raw
// bytes and the reason instead of being retried forever or dropped.
type DeadLetter struct {
	Stream, Subject, MsgID string
	Headers                map[string][]string
	Data                   []byte
	Err                    string
	Attempts               int
}

// DeadLetter records d. Recording the same (Stream, MsgID) again keeps the
// first record, so a redelivered poison message is stored once. A message
// without an id cannot be deduplicated and is stored every time.
func (s *Store) DeadLetter(ctx context.Context, d DeadLetter) error {
	headers := make(map[string][]string, len(d.Headers))
	for k, vs := range d.Headers {
		clean := make([]string, len(vs))
		for i, v := range vs {
			clean[i] = pgText(v)
		}
		headers[pgText(k)] = clean
	}
	hj, err := json.Marshal(headers)
	if err != nil {
		return fmt.Errorf("store: dead letter %s: encode headers: %w", d.MsgID, err)
	}
	data := d.Data
	if data == nil {
		data = []byte{}
	}
	return s.retry(ctx, "dead letter", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO dead_letters (stream, subject, msg_id, headers, data, error, attempts)
			VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)
			ON CONFLICT (stream, msg_id) WHERE msg_id IS NOT NULL DO NOTHING`,
			pgText(d.Stream), pgText(d.Subject), nonEmpty(pgText(d.MsgID)), string(hj), data, pgText(d.Err), d.Attempts)
		if err != nil {
			return fmt.Errorf("store: dead letter %s on %s: %w", d.MsgID, d.Subject, err)
		}
		return nil
	})
}

// pgText makes s storable as text: Postgres rejects NUL and invalid UTF-8,
// and a dead letter must not be lost over its own error message.
func pgText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// MarkReplayed records that dead letter id was sent back to its subject.
// Only the first replay's time is kept.
func (s *Store) MarkReplayed(ctx context.Context, id int64, at time.Time) error {
	return s.retry(ctx, "mark replayed", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `UPDATE dead_letters SET replayed_at = $2 WHERE id = $1 AND replayed_at IS NULL`, id, at)
		if err != nil {
			return fmt.Errorf("store: mark dead letter %d replayed: %w", id, err)
		}
		return nil
	})
}
