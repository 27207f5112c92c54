package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	sjson "github.com/segmentio/encoding/json"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
)

// State names and their ranks. A job only ever moves to a higher rank, so
// completed is absorbing and failed may still become completed.
const (
	stateQueued    = "queued"
	stateSubmitted = "submitted"
	stateFailed    = "failed"
	stateCompleted = "completed"
	stateCanceled  = "canceled"
)

var ranks = map[string]int16{
	stateQueued:    0,
	"submitting":   1, // reserved: the billing claim lives in JetStream KV
	stateSubmitted: 2,
	stateFailed:    3,
	stateCompleted: 4,
	stateCanceled:  5, // reserved
}

// errConcurrentInsert means a row we saw missing was inserted by another
// transaction. The advisory locks should make it impossible; retrying the
// whole transaction resolves it if it happens anyway.
var errConcurrentInsert = errors.New("row inserted concurrently")

// Apply applies evs in order in one transaction. Applying an event again,
// or out of order with the job's other events, changes nothing that a later
// state has already settled:
//
//   - queued creates the job or fills in its details (source, options,
//     metadata, batch, pricing) without touching the state, and creates
//     its batch;
//   - submitted records request_id, transcription_id and submitted_at, moves
//     the job to submitted if it is behind, and completes it if the
//     transcript for its request_id has already arrived;
//   - completed stores the transcript (first copy wins) with its search
//     chunks, and completes the job named by job_id or, failing that,
//     owning request_id; a transcript whose job is unknown is kept (chunks
//     too) with job_id NULL until submitted links it;
//   - failed records the error if the job has not yet failed or completed.
//
// Each state change adds a job_events row; an update that would change
// nothing is not run, so a replay leaves every row as it was, updated_at
// included. Errors that retrying cannot fix wrap ErrInvalidEvent.
func (s *Store) Apply(ctx context.Context, evs []*event.Event) error {
	in := make([]*Prepared, 0, len(evs))
	for _, e := range evs {
		p, err := Prepare(e)
		if err != nil {
			return err
		}
		in = append(in, p)
	}
	return s.ApplyPrepared(ctx, in)
}

// ApplyPrepared is Apply for events already through Prepare.
func (s *Store) ApplyPrepared(ctx context.Context, in []*Prepared) error {
	if len(in) == 0 {
		return nil
	}
	return s.retry(ctx, "apply", func(ctx context.Context) error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			return applyTx(ctx, tx, in)
		})
	})
}

// Prepared is an event checked and decoded, ready to apply. Preparing
// needs no database, so a caller can prepare the next events while the
// last ones commit.
type Prepared struct {
	*event.Event
	at time.Time // e.At at Postgres' precision

	// completed only:
	tr     *elevenlabs.Transcript
	tid    string // transcription id: the event's, else the transcript's
	words  []byte // tr.Words as JSON when merged from channels; else nil
	chunks *chunkRows
}

// Prepare checks and decodes e for ApplyPrepared. Its errors wrap
// ErrInvalidEvent: retrying cannot fix them.
func Prepare(e *event.Event) (*Prepared, error) {
	p, err := prepare(e)
	if err != nil && e != nil {
		return nil, fmt.Errorf("store: apply %s for job %s: %w", e.Type, jobLabel(e), err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: apply: %w", err)
	}
	return p, nil
}

func prepare(e *event.Event) (*Prepared, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if e.At.IsZero() {
		// Replays must write the same timestamps, so the event's own time is
		// the only one usable.
		return nil, fmt.Errorf("%w: event has no time (at)", ErrInvalidEvent)
	}
	in := &Prepared{Event: e, at: e.At.Truncate(time.Microsecond)}
	if e.Type != event.TypeCompleted {
		return in, nil
	}
	raw := bytes.TrimSpace(e.Transcription)
	if len(raw) == 0 {
		// The sink resolves claim checks before applying.
		return nil, fmt.Errorf("%w: transcription is in claim check %q, not in the event", ErrInvalidEvent, e.PayloadRef)
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("%w: transcription is not a JSON object", ErrInvalidEvent)
	}
	tr, err := elevenlabs.ParseTranscript(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	words := tr.Words
	if tr.Merged {
		// Single-channel words are the payload's own, and Postgres takes
		// them from it (see write): encoding and sending them again
		// doubled the JSON work of a burst.
		if words == nil {
			words = []elevenlabs.Word{}
		}
		in.words, err = sjson.Marshal(words)
		if err != nil {
			return nil, fmt.Errorf("%w: encode words: %w", ErrInvalidEvent, err)
		}
	}
	in.chunks = toRows(chunkWords(words))
	// The words are in chunks (and the payload) now; a 10-hour
	// transcript's structs would otherwise be held until the commit.
	tr.Words = nil
	in.tr = tr
	in.tid = e.TranscriptionID
	if in.tid == "" {
		in.tid = tr.TranscriptionID
	}
	return in, nil
}

func jobLabel(e *event.Event) string {
	if e.JobID != "" {
		return e.JobID
	}
	return "? (request " + e.RequestID + ")"
}

// applyTx runs one Apply attempt: lock, read, merge in memory, write.
//
// Advisory locks on every job id and request id the events name serialise
// the transactions that could touch the same rows, in particular the two
// that meet over a request_id (submitted links a transcript that completed
// stored without a job). Taken in sorted order they cannot deadlock with
// each other. Rows reached only through request_id are also row-locked.
func applyTx(ctx context.Context, tx pgx.Tx, in []*Prepared) error {
	m := newModel()
	var jobIDs, reqIDs []string
	keys := make([]int64, 0, 2*len(in))
	for _, e := range in {
		if e.JobID != "" {
			jobIDs = append(jobIDs, e.JobID)
			keys = append(keys, lockKey("job", e.JobID))
		}
		if e.RequestID != "" && (e.Type == event.TypeSubmitted || e.Type == event.TypeCompleted) {
			reqIDs = append(reqIDs, e.RequestID)
			keys = append(keys, lockKey("request", e.RequestID))
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)

	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, keys)
	b.Queue(`SELECT job_id, request_id, transcription_id, state, state_rank, error, convert_calls, attempts,
			queued_at, submitted_at, completed_at, failed_at
		FROM jobs WHERE job_id = ANY($1) OR request_id = ANY($2)
		ORDER BY job_id FOR UPDATE`, jobIDs, reqIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			j := &jobRow{inDB: true}
			if err := rows.Scan(&j.id, &j.requestID, &j.transcriptionID, &j.state, &j.rank, &j.errText,
				&j.convertCalls, &j.attempts, &j.queuedAt, &j.submittedAt, &j.completedAt, &j.failedAt); err != nil {
				return err
			}
			m.add(j)
		}
		return rows.Err()
	})
	b.Queue(`SELECT request_id, job_id, transcription_id, received_at
		FROM transcripts WHERE request_id = ANY($1)`, reqIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			t := &transcriptRow{inDB: true}
			if err := rows.Scan(&t.requestID, &t.jobID, &t.transcriptionID, &t.receivedAt); err != nil {
				return err
			}
			m.transcripts[t.requestID] = t
			m.tOrder = append(m.tOrder, t)
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("store: apply %d events: lock and read: %w", len(in), err)
	}

	for _, e := range in {
		m.apply(e)
	}
	return m.write(ctx, tx)
}

// lockKey maps an id to an advisory lock key. A collision only makes two
// unrelated transactions wait for each other.
func lockKey(kind, id string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(kind))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(id))
	return int64(h.Sum64())
}

// jobRow is a jobs row as read (inDB) or about to be inserted, with the
// changes the events made to it.
type jobRow struct {
	id              string
	requestID       *string
	transcriptionID *string
	state           string // "" until a new row gets its first state
	rank            int16
	errText         *string
	convertCalls    int32
	attempts        int32 // retries an operator asked for
	queuedAt        *time.Time
	submittedAt     *time.Time
	completedAt     *time.Time
	failedAt        *time.Time

	details *details // set by queued when the row had none
	inDB    bool
	dirty   bool
	label   string // the last event that changed the row, for errors
}

// details are the columns only queued knows.
type details struct {
	batchID                   *string
	source, options, metadata []byte
	pricing                   *event.Pricing
}

// batchRow is a batches row to create or complete: the earliest queued
// time and the first name seen.
type batchRow struct {
	id   string
	name *string
	at   time.Time
}

type transcriptRow struct {
	requestID       string
	jobID           *string
	transcriptionID *string
	receivedAt      time.Time

	insert *Prepared // the completed event that creates the row; nil if in DB
	inDB   bool
	link   bool // job_id was NULL in the DB and is now known
}

type transition struct {
	jobID, from, to, key, label string
	reason, process             *string
	at                          time.Time
}

// model is the transaction's view of the rows the events touch.
type model struct {
	jobs        map[string]*jobRow
	byRequest   map[string]*jobRow
	order       []*jobRow // first touched first: a stable write order
	transcripts map[string]*transcriptRow
	tOrder      []*transcriptRow
	transitions []transition
	batches     map[string]*batchRow
}

func newModel() *model {
	return &model{
		jobs:        map[string]*jobRow{},
		byRequest:   map[string]*jobRow{},
		transcripts: map[string]*transcriptRow{},
		batches:     map[string]*batchRow{},
	}
}

func (m *model) add(j *jobRow) {
	m.jobs[j.id] = j
	m.order = append(m.order, j)
	if j.requestID != nil {
		m.byRequest[*j.requestID] = j
	}
}

// job returns the row for id, starting a new one if there is none.
func (m *model) job(id string) *jobRow {
	if j := m.jobs[id]; j != nil {
		return j
	}
	j := &jobRow{id: id, rank: -1, dirty: true}
	m.add(j)
	return j
}

func (m *model) apply(e *Prepared) {
	switch e.Type {
	case event.TypeQueued:
		m.queued(e)
	case event.TypeSubmitted:
		m.submitted(e)
	case event.TypeCompleted:
		m.completed(e)
	case event.TypeFailed:
		m.failed(e)
	case event.TypeRetried:
		m.retried(e)
	case event.TypeCanceled:
		m.canceled(e)
	}
}

// retried starts attempt e.Attempt of a failed or canceled job: the one
// move back to queued, taken once per attempt number, so replaying the
// retry changes nothing.
func (m *model) retried(e *Prepared) {
	j := m.job(e.JobID)
	if (j.state != stateFailed && j.state != stateCanceled) || int(j.attempts) >= e.Attempt {
		return
	}
	reason := fmt.Sprintf("retry #%d", e.Attempt)
	m.transitions = append(m.transitions, transition{
		jobID: j.id, from: j.state, to: stateQueued, key: e.MsgID(), at: e.at,
		reason: &reason, process: nonEmpty(e.Process), label: labelOf(e),
	})
	j.state, j.rank = stateQueued, ranks[stateQueued]
	j.attempts = int32(e.Attempt)
	j.errText, j.failedAt, j.submittedAt = nil, nil, nil
	m.touch(j, e)
}

// canceled stops waiting for a job that has not completed.
func (m *model) canceled(e *Prepared) {
	j := m.job(e.JobID)
	if j.rank >= ranks[stateCompleted] {
		return
	}
	m.moveTo(j, stateCanceled, e, e.MsgID(), e.at, nonEmpty(e.Error))
}

func (m *model) queued(e *Prepared) {
	j := m.job(e.JobID)
	m.moveTo(j, stateQueued, e, e.MsgID(), e.at, nil)
	if j.queuedAt != nil {
		return // described already; the job's identity does not change
	}
	md := e.Job.Metadata
	if md == nil {
		md = map[string]string{}
	}
	d := &details{batchID: nonEmpty(e.Job.BatchID), pricing: e.Job.Pricing}
	d.source, _ = json.Marshal(e.Job.Source) // plain structs: cannot fail
	d.options, _ = json.Marshal(e.Job.Options)
	d.metadata, _ = json.Marshal(md)
	j.details = d
	j.queuedAt = &e.at
	m.touch(j, e)
	if d.batchID != nil {
		m.batch(*d.batchID, e.Job.BatchName, e.at)
	}
}

// batch notes that batch id has a job queued at at, under name.
func (m *model) batch(id, name string, at time.Time) {
	b := m.batches[id]
	if b == nil {
		b = &batchRow{id: id, at: at}
		m.batches[id] = b
	}
	if at.Before(b.at) {
		b.at = at
	}
	if b.name == nil {
		b.name = nonEmpty(name)
	}
}

func (m *model) submitted(e *Prepared) {
	j := m.job(e.JobID)
	m.moveTo(j, stateSubmitted, e, e.MsgID(), e.at, nil)
	// A completed job keeps the request that produced its transcript.
	if j.requestID == nil || j.rank < ranks[stateCompleted] {
		m.setRequest(j, e.RequestID, e)
	}
	m.fillString(j, &j.transcriptionID, e.TranscriptionID, e)
	m.fillTime(j, &j.submittedAt, e.at, e)
	m.countCalls(j, max(1, e.ConvertCalls), e)
	// The webhook can beat the convert answer: its transcript is waiting.
	t := m.transcripts[e.RequestID]
	if t == nil || (t.jobID != nil && *t.jobID != j.id) {
		return
	}
	m.link(t, j)
	var tid string
	if t.transcriptionID != nil {
		tid = *t.transcriptionID
	}
	m.complete(j, e.RequestID, tid, t.receivedAt, completedKey(e.RequestID), e)
}

// countCalls raises the job's convert call count to n; counts only grow,
// so replays and late events cannot lower it.
func (m *model) countCalls(j *jobRow, n int, e *Prepared) {
	if int(j.convertCalls) < n {
		j.convertCalls = int32(n)
		m.touch(j, e)
	}
}

func (m *model) completed(e *Prepared) {
	var j *jobRow
	if e.JobID != "" {
		j = m.job(e.JobID)
	} else {
		j = m.byRequest[e.RequestID]
	}
	t := m.transcripts[e.RequestID]
	if t == nil {
		t = &transcriptRow{requestID: e.RequestID, transcriptionID: nonEmpty(e.tid), receivedAt: e.at, insert: e}
		m.transcripts[e.RequestID] = t
		m.tOrder = append(m.tOrder, t)
	}
	if j == nil {
		return // kept with job_id NULL until submitted names the job
	}
	m.link(t, j)
	m.complete(j, e.RequestID, e.tid, e.at, e.MsgID(), e)
}

func (m *model) failed(e *Prepared) {
	j := m.job(e.JobID)
	m.countCalls(j, e.ConvertCalls, e)
	if !m.moveTo(j, stateFailed, e, e.MsgID(), e.at, nonEmpty(e.Error)) {
		return
	}
	j.errText = nonEmpty(e.Error)
	j.failedAt = &e.at
}

// complete moves j to completed by request r. A job that has already
// completed keeps its completion, but learns a missing transcription id.
func (m *model) complete(j *jobRow, r, tid string, at time.Time, key string, e *Prepared) {
	if m.moveTo(j, stateCompleted, e, key, at, nil) {
		m.setRequest(j, r, e)
		j.completedAt = &at
	}
	if j.requestID != nil && *j.requestID == r {
		m.fillString(j, &j.transcriptionID, tid, e)
	}
}

// moveTo moves j to state if that is forward, recording the transition.
func (m *model) moveTo(j *jobRow, state string, e *Prepared, key string, at time.Time, reason *string) bool {
	rank := ranks[state]
	if rank <= j.rank {
		return false
	}
	m.transitions = append(m.transitions, transition{
		jobID: j.id, from: j.state, to: state, key: key, at: at,
		reason: reason, process: nonEmpty(e.Process), label: labelOf(e),
	})
	j.state, j.rank = state, rank
	m.touch(j, e)
	return true
}

func (m *model) setRequest(j *jobRow, r string, e *Prepared) {
	if j.requestID != nil && *j.requestID == r {
		return
	}
	if j.requestID != nil && m.byRequest[*j.requestID] == j {
		delete(m.byRequest, *j.requestID)
	}
	j.requestID = &r
	m.byRequest[r] = j
	m.touch(j, e)
}

func (m *model) link(t *transcriptRow, j *jobRow) {
	if t.jobID != nil {
		return
	}
	id := j.id
	t.jobID = &id
	t.link = t.inDB // a row still to be inserted carries its job_id
}

func (m *model) fillString(j *jobRow, dst **string, v string, e *Prepared) {
	if *dst == nil && v != "" {
		*dst = &v
		m.touch(j, e)
	}
}

func (m *model) fillTime(j *jobRow, dst **time.Time, v time.Time, e *Prepared) {
	if *dst == nil {
		*dst = &v
		m.touch(j, e)
	}
}

func (m *model) touch(j *jobRow, e *Prepared) {
	j.dirty = true
	j.label = labelOf(e)
}

func labelOf(e *Prepared) string { return string(e.Type) + " for job " + jobLabel(e.Event) }

func completedKey(requestID string) string {
	return (&event.Event{Type: event.TypeCompleted, RequestID: requestID}).MsgID()
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// write sends every change in one pipelined batch.
func (m *model) write(ctx context.Context, tx pgx.Tx) error {
	type step struct {
		label string
		check func(pgconn.CommandTag) error
	}
	b := &pgx.Batch{}
	var steps []step
	queue := func(label string, check func(pgconn.CommandTag) error, sql string, args ...any) {
		steps = append(steps, step{label, check})
		b.Queue(sql, args...)
	}
	for _, j := range m.order {
		if !j.dirty {
			continue
		}
		d := j.details
		if d == nil {
			d = &details{}
		}
		perHour, multiplier, currency := d.price()
		if !j.inDB {
			queue(j.label, insertedOne, `INSERT INTO jobs (job_id, batch_id, request_id, transcription_id,
					source, options, metadata, state, state_rank, error, convert_calls,
					queued_at, submitted_at, completed_at, failed_at, attempts,
					price_per_hour, price_multiplier, currency)
				VALUES ($1, $2, $3, $4, COALESCE($5::jsonb, '{}'), COALESCE($6::jsonb, '{}'), COALESCE($7::jsonb, '{}'),
					$8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
				ON CONFLICT (job_id) DO NOTHING`,
				j.id, d.batchID, j.requestID, j.transcriptionID, jsonArg(d.source), jsonArg(d.options), jsonArg(d.metadata),
				j.state, j.rank, j.errText, j.convertCalls, j.queuedAt, j.submittedAt, j.completedAt, j.failedAt, j.attempts,
				perHour, multiplier, currency)
			continue
		}
		queue(j.label, nil, `UPDATE jobs SET request_id = $2, transcription_id = $3, state = $4, state_rank = $5,
				error = $6, convert_calls = $7, queued_at = $8, submitted_at = $9, completed_at = $10, failed_at = $11,
				batch_id = CASE WHEN $12 THEN $13 ELSE batch_id END,
				source = COALESCE($14::jsonb, source), options = COALESCE($15::jsonb, options),
				metadata = COALESCE($16::jsonb, metadata), attempts = $17,
				price_per_hour = CASE WHEN $12 THEN $18 ELSE price_per_hour END,
				price_multiplier = CASE WHEN $12 THEN $19 ELSE price_multiplier END,
				currency = CASE WHEN $12 THEN $20 ELSE currency END,
				updated_at = now()
			WHERE job_id = $1`,
			j.id, j.requestID, j.transcriptionID, j.state, j.rank, j.errText, j.convertCalls,
			j.queuedAt, j.submittedAt, j.completedAt, j.failedAt,
			j.details != nil, d.batchID, jsonArg(d.source), jsonArg(d.options), jsonArg(d.metadata), j.attempts,
			perHour, multiplier, currency)
	}
	if len(m.batches) > 0 {
		// Sorted, so that two transactions creating the same batches take
		// their row locks in the same order.
		ids := slices.Sorted(maps.Keys(m.batches))
		names := make([]*string, len(ids))
		ats := make([]time.Time, len(ids))
		for i, id := range ids {
			names[i], ats[i] = m.batches[id].name, m.batches[id].at
		}
		queue("create batches", nil, `INSERT INTO batches (batch_id, name, created_at)
				SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) ORDER BY 1
			ON CONFLICT (batch_id) DO UPDATE
				SET name = coalesce(batches.name, excluded.name), created_at = least(batches.created_at, excluded.created_at)
				WHERE (batches.name IS NULL AND excluded.name IS NOT NULL) OR excluded.created_at < batches.created_at`,
			ids, names, ats)
	}
	for _, t := range m.tOrder {
		switch {
		case t.insert != nil:
			e := t.insert
			lang := nonEmpty(e.tr.LanguageCode)
			queue(labelOf(e), nil, `INSERT INTO transcripts (request_id, job_id, transcription_id, language_code,
					language_probability, text, words, audio_duration_secs, payload, received_at, chunks_version)
				VALUES ($1, $2, $3, $4, $5, $6,
					coalesce($7::jsonb, CASE WHEN jsonb_typeof($9::jsonb -> 'words') = 'array' THEN $9::jsonb -> 'words' END, '[]'),
					$8, $9::jsonb, $10, $11)
				ON CONFLICT (request_id) DO NOTHING`,
				t.requestID, t.jobID, t.transcriptionID, lang, e.tr.LanguageProbability,
				// Bytes, not strings: a 10-hour transcript is tens of MB.
				e.tr.Text, e.words, e.tr.AudioDurationSecs, bytes.TrimSpace(e.Transcription), t.receivedAt,
				chunksVersion)
			if len(e.chunks.seq) > 0 {
				queue(labelOf(e)+": search chunks", nil, insertChunksSQL, e.chunks.args(t.requestID, t.jobID, lang)...)
			}
		case t.link:
			label := "link transcript " + t.requestID + " to job " + *t.jobID
			queue(label, nil, `UPDATE transcripts SET job_id = $2 WHERE request_id = $1 AND job_id IS NULL`, t.requestID, t.jobID)
			queue(label, nil, `UPDATE transcript_chunks SET job_id = $2 WHERE request_id = $1 AND job_id IS NULL`, t.requestID, t.jobID)
		}
	}
	for _, tr := range m.transitions {
		var from *string
		if tr.from != "" {
			from = &tr.from
		}
		queue(tr.label, nil, `INSERT INTO job_events (job_id, from_state, to_state, reason, process, event_key, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (job_id, event_key) DO NOTHING`,
			tr.jobID, from, tr.to, tr.reason, tr.process, tr.key, tr.at)
	}
	if len(steps) == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	for _, st := range steps {
		ct, err := br.Exec()
		if err == nil && st.check != nil {
			err = st.check(ct)
		}
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("store: apply %s: %w", st.label, err)
		}
	}
	return br.Close()
}

func insertedOne(ct pgconn.CommandTag) error {
	if ct.RowsAffected() != 1 {
		return errConcurrentInsert
	}
	return nil
}

// price returns the pricing columns: all NULL when intake sent no price.
func (d *details) price() (perHour, multiplier *float64, currency *string) {
	if d.pricing == nil {
		return nil, nil, nil
	}
	p := *d.pricing
	return &p.PerHour, &p.Multiplier, nonEmpty(p.Currency)
}

// jsonArg passes nil for "no value" so COALESCE keeps the column.
func jsonArg(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
