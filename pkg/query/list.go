package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrBadCursor means Page.After is not a cursor Jobs returned for the same
// sort order.
var ErrBadCursor = errors.New("bad page cursor")

// Page asks for one page of jobs.
type Page struct {
	// Limit is the page size. Default 100, at most 10,000.
	Limit int
	// After is the cursor Jobs returned with the previous page; empty for
	// the first page.
	After string
	// Sort is one of SortKeys, optionally prefixed with "-" (descending)
	// or "+" (ascending); without a prefix each key has its natural
	// direction: newest, longest, dearest first, names A to Z. Default
	// "queued_at". Rows without the value (a job not completed yet, an
	// unknown duration or cost) come last in descending order, first in
	// ascending. Ties are broken by job id.
	Sort string
}

// SortKeys are the sort keys Jobs accepts.
var SortKeys = []string{"queued_at", "completed_at", "duration", "cost", "name"}

// sortKey is an ORDER BY expression on job_summary s that is never NULL
// (so the keyset comparison needs no NULL cases), and its SQL type.
type sortKey struct {
	expr, typ string
	desc      bool
}

var sortKeys = map[string]sortKey{
	// The expression matches the jobs_queued_idx index.
	"queued_at":    {expr: "coalesce(s.queued_at, '-infinity'::timestamptz)", typ: "timestamptz", desc: true},
	"completed_at": {expr: "coalesce(s.completed_at, '-infinity'::timestamptz)", typ: "timestamptz", desc: true},
	"duration":     {expr: "coalesce(s.audio_secs, -1)", typ: "float8", desc: true},
	"cost":         {expr: "coalesce(s.cost, -1)", typ: "numeric", desc: true},
	"name":         {expr: "s.name", typ: "text"},
}

// JobRow is one line of `scribeq jobs`.
type JobRow struct {
	JobID     string `json:"job_id"`
	BatchID   string `json:"batch_id,omitempty"`
	BatchName string `json:"batch_name,omitempty"`
	State     string `json:"state"`
	// Name is the audio's file name, else its path, URL or the job id.
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	URL     string `json:"url,omitempty"`
	Archive string `json:"archive,omitempty"`
	Entry   string `json:"entry,omitempty"`
	// DurationSecs is the audio duration: ElevenLabs' figure once
	// transcribed, else intake's reading (DurationEstimated); nil if unknown.
	DurationSecs      *float64 `json:"duration_secs,omitempty"`
	DurationEstimated bool     `json:"duration_estimated,omitempty"`
	Language          string   `json:"language,omitempty"`
	// Cost is DurationSecs priced as intake priced the job; nil without a
	// price or a duration.
	Cost         *float64          `json:"cost,omitempty"`
	Currency     string            `json:"currency,omitempty"`
	QueuedAt     *time.Time        `json:"queued_at,omitempty"`
	CompletedAt  *time.Time        `json:"completed_at,omitempty"`
	Error        string            `json:"error,omitempty"`
	ConvertCalls int               `json:"convert_calls"`
	Attempts     int               `json:"attempts"`
	RequestID    string            `json:"request_id,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// cursor is what Page.After encodes: the sort, and the last row's sort
// value (as Postgres prints it, so it converts back exactly) and job id.
type cursor struct {
	Sort  string `json:"s"`
	Value string `json:"v"`
	JobID string `json:"id"`
}

// Jobs returns one page of the jobs f selects, and the cursor of the next
// page ("" after the last). Paging is by keyset (the last row's sort value
// and job id), so pages neither skip nor repeat rows when jobs are added
// in between, and a deep page costs what the first does.
func (d *DB) Jobs(ctx context.Context, f Filter, pg Page) ([]JobRow, string, error) {
	name, key, err := parseSort(pg.Sort)
	if err != nil {
		return nil, "", err
	}
	limit := pg.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10000)
	var p params
	where, err := f.where(&p, "s")
	if err != nil {
		return nil, "", err
	}
	op, dir := ">", "ASC"
	if key.desc {
		op, dir = "<", "DESC"
	}
	if pg.After != "" {
		c, err := decodeCursor(pg.After)
		if err != nil || c.Sort != name {
			return nil, "", fmt.Errorf("query: jobs: %w (it is for another sort order, or damaged)", ErrBadCursor)
		}
		where += fmt.Sprintf(" AND (%s, s.job_id) %s (%s::%s, %s)", key.expr, op, p.add(c.Value), key.typ, p.add(c.JobID))
	}
	sql := fmt.Sprintf(`SELECT s.job_id, coalesce(s.batch_id, ''), coalesce(s.batch_name, ''), s.state, s.name,
			coalesce(s.source_path, ''), coalesce(s.source_url, ''), coalesce(s.archive, ''), coalesce(s.entry, ''),
			s.audio_secs, s.audio_secs_estimated, coalesce(s.language_code, ''), s.cost::float8, coalesce(s.currency, ''),
			s.queued_at, s.completed_at, coalesce(s.error, ''), s.convert_calls, s.attempts, coalesce(s.request_id, ''),
			s.metadata, (%[1]s)::text
		FROM job_summary s
		WHERE %[2]s
		ORDER BY %[1]s %[3]s, s.job_id %[3]s
		LIMIT %[4]d`, key.expr, where, dir, limit+1)
	rows, err := d.pool.Query(ctx, sql, p...)
	if err != nil {
		return nil, "", fmt.Errorf("query: jobs: %w", err)
	}
	var last []string
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (JobRow, error) {
		var j JobRow
		var sortValue string
		err := r.Scan(&j.JobID, &j.BatchID, &j.BatchName, &j.State, &j.Name, &j.Path, &j.URL, &j.Archive, &j.Entry,
			&j.DurationSecs, &j.DurationEstimated, &j.Language, &j.Cost, &j.Currency, &j.QueuedAt, &j.CompletedAt,
			&j.Error, &j.ConvertCalls, &j.Attempts, &j.RequestID, &j.Metadata, &sortValue)
		last = append(last, sortValue)
		return j, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("query: jobs: %w", err)
	}
	if len(out) <= limit {
		return out, "", nil
	}
	out = out[:limit]
	next := encodeCursor(cursor{Sort: name, Value: last[limit-1], JobID: out[limit-1].JobID})
	return out, next, nil
}

// parseSort returns the canonical name ("-cost", "+name", …) and key of s.
func parseSort(s string) (string, sortKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = "queued_at"
	}
	field := strings.TrimLeft(s, "+-")
	key, ok := sortKeys[field]
	if !ok || len(s)-len(field) > 1 {
		return "", sortKey{}, fmt.Errorf("query: jobs: unknown sort %q (want one of %s, optionally prefixed with - or +)",
			s, strings.Join(SortKeys, ", "))
	}
	switch s[0] {
	case '-':
		key.desc = true
	case '+':
		key.desc = false
	}
	name := "+" + field
	if key.desc {
		name = "-" + field
	}
	return name, key, nil
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c) // strings only: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, err
	}
	if c.Sort == "" || c.JobID == "" {
		return c, errors.New("incomplete cursor")
	}
	return c, nil
}
