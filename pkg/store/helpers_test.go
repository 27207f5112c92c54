package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, pgtest.NewDB(t), nil)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	return st
}

// history is the canonical set of events the invariant tests reorder.
//
//   - job-a: queued, submitted, completed (the webhook names the job);
//   - job-b: queued, then failed at convert;
//   - job-c: queued; its webhook arrives without a job id before the convert
//     answer, so the transcript waits unlinked until submitted names it;
//   - req-x: a transcript for a request no job knows;
//   - lateFailA: a failed event for job-a that must not undo its completion.
type history struct {
	qA, sA, cA, qB, fB, qC, cC, sC, cX, lateFailA *event.Event
}

var base = time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)

func at(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

const (
	transcriptA = `{"language_code":"en","language_probability":0.98,"text":"hello world",
		"words":[{"text":"hello","start":0.0,"end":0.5,"type":"word","logprob":-0.1},
		{"text":" ","start":0.5,"end":0.5,"type":"spacing","logprob":0},
		{"text":"world","start":0.5,"end":1.0,"type":"word","logprob":-0.2}],
		"transcription_id":"tr-a","audio_duration_secs":1.0}`
	transcriptC = `{"transcripts":[
		{"language_code":"de","language_probability":0.7,"text":"hallo","channel_index":0,
		 "words":[{"text":"hallo","start":0,"end":0.4,"type":"word","logprob":-0.3}]},
		{"language_code":"en","language_probability":0.9,"text":"hi","channel_index":1,
		 "words":[{"text":"hi","start":0.1,"end":0.3,"type":"word","logprob":-0.1}]}],
		"transcription_id":"tr-c","audio_duration_secs":2.5}`
	transcriptX = `{"language_code":"fr","language_probability":0.5,"text":"bonjour","words":[]}`
)

func newHistory() history {
	job := func(id, batch, path string, md map[string]string, t time.Time) *event.Job {
		return &event.Job{V: event.Version, JobID: id, BatchID: batch,
			Source:  event.Source{Object: "sha-" + id, Path: path, Name: path, Size: 1234},
			Options: event.Options{Model: "scribe_v1", Diarize: true}, Metadata: md, At: t}
	}
	ev := func(typ event.Type, jobID, reqID string, t time.Time, process string) *event.Event {
		return &event.Event{V: event.Version, Type: typ, JobID: jobID, RequestID: reqID, At: t, Process: process}
	}
	h := history{}
	h.qA = ev(event.TypeQueued, "job-a", "", at(0), "intake")
	h.qA.Job = job("job-a", "batch-1", "a.wav", map[string]string{"speaker": "ann"}, at(0))
	h.qA.Job.BatchName = "calls"
	h.qA.Job.Pricing = &event.Pricing{PerHour: 0.4, Multiplier: 1.5, Currency: "USD"}
	h.qB = ev(event.TypeQueued, "job-b", "", at(1), "intake")
	h.qB.Job = job("job-b", "batch-1", "b.wav", nil, at(1))
	h.qB.Job.BatchName = "calls"
	h.qC = ev(event.TypeQueued, "job-c", "", at(2), "intake")
	h.qC.Job = job("job-c", "", "c.wav", nil, at(2))

	h.sA = ev(event.TypeSubmitted, "job-a", "req-a", at(10), "submitter")
	h.sA.TranscriptionID = "tr-a"
	h.sC = ev(event.TypeSubmitted, "job-c", "req-c", at(12), "submitter")
	h.fB = ev(event.TypeFailed, "job-b", "", at(11), "submitter")
	h.fB.Error = "convert: 422 unsupported audio"

	h.cA = ev(event.TypeCompleted, "job-a", "req-a", at(20), "ingress")
	h.cA.Transcription = json.RawMessage(transcriptA)
	h.cA.WebhookMetadata = json.RawMessage(`{"job_id":"job-a"}`)
	h.cC = ev(event.TypeCompleted, "", "req-c", at(11), "ingress") // before sC
	h.cC.Transcription = json.RawMessage(transcriptC)
	h.cX = ev(event.TypeCompleted, "", "req-x", at(30), "ingress")
	h.cX.Transcription = json.RawMessage(transcriptX)

	h.lateFailA = ev(event.TypeFailed, "job-a", "", at(40), "reconciler")
	h.lateFailA.Error = "late failure"
	return h
}

func (h history) canonical() []*event.Event {
	return []*event.Event{h.qA, h.qB, h.qC, h.sA, h.cC, h.fB, h.cA, h.sC, h.cX}
}

// applyIn applies evs in batches of size n (0: all at once).
func applyIn(t *testing.T, st *store.Store, evs []*event.Event, n int) {
	t.Helper()
	if n <= 0 {
		n = len(evs)
	}
	ctx := context.Background()
	for i := 0; i < len(evs); i += n {
		require.NoError(t, st.Apply(ctx, evs[i:min(i+n, len(evs))]))
	}
}

// snapshot is every row of the tables Apply writes, as jsonb text (a
// canonical form), in a stable order.
type snapshot struct {
	Jobs, Transcripts, Events, Chunks, Batches []string
}

// contents leaves out the columns that record when a row was written.
func contents(t *testing.T, pool *pgxpool.Pool) snapshot {
	t.Helper()
	return snapshot{
		Jobs:        rowsOf(t, pool, `SELECT (to_jsonb(j) - 'created_at' - 'updated_at')::text FROM jobs j ORDER BY job_id`),
		Transcripts: rowsOf(t, pool, `SELECT to_jsonb(t)::text FROM transcripts t ORDER BY request_id`),
		Events: rowsOf(t, pool, `SELECT (to_jsonb(e) - 'id' - 'recorded_at')::text FROM job_events e
			ORDER BY job_id, at, event_key, to_state`),
		Chunks:  rowsOf(t, pool, `SELECT to_jsonb(c)::text FROM transcript_chunks c ORDER BY request_id, seq`),
		Batches: rowsOf(t, pool, `SELECT to_jsonb(b)::text FROM batches b ORDER BY batch_id`),
	}
}

// everything is every column, write times and ids included.
func everything(t *testing.T, pool *pgxpool.Pool) snapshot {
	t.Helper()
	return snapshot{
		Jobs:        rowsOf(t, pool, `SELECT to_jsonb(j)::text FROM jobs j ORDER BY job_id`),
		Transcripts: rowsOf(t, pool, `SELECT to_jsonb(t)::text FROM transcripts t ORDER BY request_id`),
		Events:      rowsOf(t, pool, `SELECT to_jsonb(e)::text FROM job_events e ORDER BY id`),
		Chunks:      rowsOf(t, pool, `SELECT to_jsonb(c)::text FROM transcript_chunks c ORDER BY request_id, seq`),
		Batches:     rowsOf(t, pool, `SELECT to_jsonb(b)::text FROM batches b ORDER BY batch_id`),
	}
}

func rowsOf(t *testing.T, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// stories is each job's transitions in the order they were recorded, as
// "from->to key".
func stories(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT job_id, coalesce(from_state, '') || '->' || to_state || ' ' || event_key FROM job_events ORDER BY id`)
	require.NoError(t, err)
	out := map[string][]string{}
	for rows.Next() {
		var job, step string
		require.NoError(t, rows.Scan(&job, &step))
		out[job] = append(out[job], step)
	}
	require.NoError(t, rows.Err())
	return out
}
