package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/store"
)

var canonicalStories = map[string][]string{
	"job-a": {"->queued job-a:queued", "queued->submitted job-a:submitted", "submitted->completed req-a:completed"},
	"job-b": {"->queued job-b:queued", "queued->failed job-b:failed"},
	"job-c": {"->queued job-c:queued", "queued->submitted job-c:submitted", "submitted->completed req-c:completed"},
}

// The canonical history applied one event at a time produces exactly these
// rows; every variant below must then produce the same ones.
func TestApplyCanonicalRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHistory()
	st := openStore(t)
	applyIn(t, st, h.canonical(), 1)
	pool := st.Pool()

	type job struct {
		State, RequestID, TranscriptionID, Error, BatchID, Path, Speaker string
		Rank, ConvertCalls                                               int
		QueuedAt, SubmittedAt, CompletedAt, FailedAt                     *time.Time
	}
	get := func(id string) job {
		var j job
		var req, tid, errText, batch, path, speaker *string
		require.NoError(t, pool.QueryRow(ctx, `SELECT state, state_rank, request_id, transcription_id, error, batch_id,
				source->>'path', metadata->>'speaker', convert_calls, queued_at, submitted_at, completed_at, failed_at
			FROM jobs WHERE job_id = $1`, id).Scan(&j.State, &j.Rank, &req, &tid, &errText, &batch, &path, &speaker,
			&j.ConvertCalls, &j.QueuedAt, &j.SubmittedAt, &j.CompletedAt, &j.FailedAt))
		for dst, src := range map[*string]*string{&j.RequestID: req, &j.TranscriptionID: tid, &j.Error: errText,
			&j.BatchID: batch, &j.Path: path, &j.Speaker: speaker} {
			if src != nil {
				*dst = *src
			}
		}
		return j
	}
	us := func(sec int) *time.Time { v := at(sec).Truncate(time.Microsecond); return &v }

	a := get("job-a")
	require.Equal(t, job{State: "completed", Rank: 4, RequestID: "req-a", TranscriptionID: "tr-a", BatchID: "batch-1",
		Path: "a.wav", Speaker: "ann", ConvertCalls: 1}, job{State: a.State, Rank: a.Rank, RequestID: a.RequestID,
		TranscriptionID: a.TranscriptionID, BatchID: a.BatchID, Path: a.Path, Speaker: a.Speaker, ConvertCalls: a.ConvertCalls})
	require.True(t, us(0).Equal(*a.QueuedAt))
	require.True(t, us(10).Equal(*a.SubmittedAt))
	require.True(t, us(20).Equal(*a.CompletedAt))
	require.Nil(t, a.FailedAt)

	b := get("job-b")
	require.Equal(t, "failed", b.State)
	require.Equal(t, "convert: 422 unsupported audio", b.Error)
	require.True(t, us(11).Equal(*b.FailedAt))
	require.Zero(t, b.ConvertCalls)

	c := get("job-c")
	require.Equal(t, "completed", c.State)
	require.Equal(t, "req-c", c.RequestID)
	require.Equal(t, "tr-c", c.TranscriptionID, "learned from the transcript")
	require.Empty(t, c.BatchID)
	require.True(t, us(11).Equal(*c.CompletedAt), "completed when the transcript arrived")

	var tJobA, tJobC, tJobX *string
	var textC, lang string
	var channels int
	require.NoError(t, pool.QueryRow(ctx, `SELECT job_id FROM transcripts WHERE request_id = 'req-a'`).Scan(&tJobA))
	require.NoError(t, pool.QueryRow(ctx, `SELECT job_id, text, language_code,
			(SELECT count(DISTINCT w->>'channel_index') FROM jsonb_array_elements(words) w)
		FROM transcripts WHERE request_id = 'req-c'`).Scan(&tJobC, &textC, &lang, &channels))
	require.NoError(t, pool.QueryRow(ctx, `SELECT job_id FROM transcripts WHERE request_id = 'req-x'`).Scan(&tJobX))
	require.Equal(t, "job-a", *tJobA)
	require.Equal(t, "job-c", *tJobC, "linked when submitted arrived")
	require.Equal(t, "hallo\nhi", textC)
	require.Equal(t, "en", lang)
	require.Equal(t, 2, channels)
	require.Nil(t, tJobX, "a transcript for an unknown request stays unlinked")

	var payloadEqual bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT payload = $1::jsonb FROM transcripts WHERE request_id = 'req-a'`,
		transcriptA).Scan(&payloadEqual))
	require.True(t, payloadEqual, "payload keeps the raw transcription")
	var wordsEqual bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT words = $1::jsonb -> 'words' FROM transcripts WHERE request_id = 'req-a'`,
		transcriptA).Scan(&wordsEqual))
	require.True(t, wordsEqual, "single-channel words are the payload's own")

	require.Equal(t, canonicalStories, stories(t, pool))
	var reason, process string
	require.NoError(t, pool.QueryRow(ctx, `SELECT reason, process FROM job_events WHERE job_id = 'job-b' AND to_state = 'failed'`).
		Scan(&reason, &process))
	require.Equal(t, "convert: 422 unsupported audio", reason)
	require.Equal(t, "submitter", process)
}

// Invariants 3 and 4: duplicates, replays, reorderings and batching all end
// in the same jobs and transcripts rows as the canonical order. job_events
// tells each ordering's own story: a transition that never happened (the
// job jumped straight to completed) is not made up.
func TestApplyConverges(t *testing.T) {
	t.Parallel()
	h := newHistory()
	canon := h.canonical()
	twice := func(evs []*event.Event) []*event.Event {
		var out []*event.Event
		for _, e := range evs {
			out = append(out, e, e)
		}
		return out
	}
	reversed := slices.Clone(canon)
	slices.Reverse(reversed)
	reversedStories := map[string][]string{
		"job-a": {"->completed req-a:completed"},
		"job-b": {"->failed job-b:failed"},
		"job-c": {"->submitted job-c:submitted", "submitted->completed req-c:completed"},
	}
	withStory := func(job string, story ...string) map[string][]string {
		m := map[string][]string{}
		for k, v := range canonicalStories {
			m[k] = v
		}
		m[job] = story
		return m
	}

	ref := openStore(t)
	applyIn(t, ref, canon, 1)
	want := contents(t, ref.Pool())

	tests := []struct {
		name    string
		events  []*event.Event
		batch   int                 // events per Apply; 0: all in one
		stories map[string][]string // nil: as canonical, and job_events rows equal too
	}{
		{name: "OneBatch", events: canon},
		{name: "SplitBatches", events: canon, batch: 2},
		{name: "EveryEventTwiceOneBatch", events: twice(canon)},
		{name: "EveryEventTwiceOneByOne", events: twice(canon), batch: 1},
		{name: "Replayed3x", events: slices.Concat(canon, canon, canon), batch: 4},
		{name: "LateDuplicateSubmitted", events: append(slices.Clone(canon), h.sA), batch: 1},
		{name: "FailedAfterCompleted", events: append(slices.Clone(canon), h.lateFailA), batch: 1},
		{name: "UnknownRequestFirst", events: append([]*event.Event{h.cX}, canon[:len(canon)-1]...), batch: 1},
		{
			name:    "CompletedBeforeSubmitted",
			events:  []*event.Event{h.qA, h.qB, h.qC, h.cA, h.cC, h.fB, h.sA, h.sC, h.cX},
			batch:   1,
			stories: withStory("job-a", "->queued job-a:queued", "queued->completed req-a:completed"),
		},
		{
			name:    "CompletedBeforeQueued",
			events:  []*event.Event{h.cA, h.qA, h.sA, h.qB, h.qC, h.cC, h.fB, h.sC, h.cX},
			batch:   1,
			stories: withStory("job-a", "->completed req-a:completed"),
		},
		{
			// The transcript for job-c arrives after submitted: it is linked
			// through jobs.request_id instead. Same story, but the completion
			// is now recorded by the ingress's event, not the submitter's.
			name:    "CompletedWithoutJobIDAfterSubmitted",
			events:  []*event.Event{h.qA, h.qB, h.qC, h.sA, h.sC, h.fB, h.cA, h.cC, h.cX},
			batch:   1,
			stories: canonicalStories,
		},
		{name: "ReversedOneByOne", events: reversed, batch: 1, stories: reversedStories},
		{name: "ReversedOneBatch", events: reversed, stories: reversedStories},
		{name: "ReversedThenCanonical", events: slices.Concat(reversed, canon), batch: 3, stories: reversedStories},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			applyIn(t, st, tt.events, tt.batch)
			got := contents(t, st.Pool())
			require.Equal(t, want.Jobs, got.Jobs)
			require.Equal(t, want.Transcripts, got.Transcripts)
			require.Equal(t, want.Chunks, got.Chunks)
			require.Equal(t, want.Batches, got.Batches)
			if tt.stories == nil {
				require.Equal(t, want.Events, got.Events)
				return
			}
			require.Equal(t, tt.stories, stories(t, st.Pool()))
		})
	}

	// Sinks on several machines apply the same events at once, each in its
	// own order. The locks must make the outcome that of some serial order.
	for round := range 3 {
		t.Run("ConcurrentShuffled", func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			var wg sync.WaitGroup
			errs := make(chan error, 4*len(canon))
			for w := range 4 {
				evs := slices.Clone(canon)
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
				wg.Go(func() {
					for _, e := range evs {
						errs <- st.Apply(context.Background(), []*event.Event{e})
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			got := contents(t, st.Pool())
			require.Equal(t, want.Jobs, got.Jobs)
			require.Equal(t, want.Transcripts, got.Transcripts)
			require.Equal(t, want.Chunks, got.Chunks)
			require.Equal(t, want.Batches, got.Batches)
			requireForwardStories(t, stories(t, st.Pool()))
		})
	}
}

// requireForwardStories checks that each job's recorded transitions chain
// (each starts where the previous ended) and only move forward.
func requireForwardStories(t *testing.T, s map[string][]string) {
	t.Helper()
	rank := map[string]int{"": -1, "queued": 0, "submitted": 2, "failed": 3, "completed": 4}
	for job, steps := range s {
		prev := ""
		for _, step := range steps {
			var from, to, key string
			for i := range len(step) - 1 {
				if step[i:i+2] == "->" {
					from = step[:i]
					rest := step[i+2:]
					for k := range len(rest) {
						if rest[k] == ' ' {
							to, key = rest[:k], rest[k+1:]
							break
						}
					}
					break
				}
			}
			require.NotEmpty(t, key, "job %s step %q", job, step)
			require.Equal(t, prev, from, "job %s: %v", job, steps)
			require.Greater(t, rank[to], rank[from], "job %s: %v", job, steps)
			prev = to
		}
	}
	require.Len(t, s, 3)
}

// Invariant 3: applying the same events again changes nothing at all, not
// even updated_at, whichever way they are batched.
func TestApplyReplayChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHistory()
	st := openStore(t)
	evs := append(h.canonical(), h.lateFailA)
	applyIn(t, st, evs, 1)
	before := everything(t, st.Pool())
	require.NotEmpty(t, before.Events)
	require.NotEmpty(t, before.Chunks)
	require.NotEmpty(t, before.Batches)

	applyIn(t, st, evs, 0)
	applyIn(t, st, evs, 1)
	rev := slices.Clone(evs)
	slices.Reverse(rev)
	applyIn(t, st, rev, 2)
	require.Equal(t, before, everything(t, st.Pool()))

	// The snapshot does see a real change (so the check above can fail).
	q := *h.qA
	q.JobID, q.Job = "job-d", &event.Job{V: 1, JobID: "job-d", Source: event.Source{URL: "https://x/d.wav"},
		Options: event.Options{Model: "scribe_v1"}, At: at(50)}
	require.NoError(t, st.Apply(context.Background(), []*event.Event{&q}))
	require.NotEqual(t, before.Jobs, everything(t, st.Pool()).Jobs)
}

func TestApplyRejectsEventsItCannotStore(t *testing.T) {
	t.Parallel()
	h := newHistory()
	st := openStore(t)
	ctx := context.Background()

	claim := *h.cA
	claim.Transcription, claim.PayloadRef = nil, "payloads/req-a"
	notObject := *h.cA
	notObject.Transcription = json.RawMessage(`"just text"`)
	broken := *h.cA
	broken.Transcription = json.RawMessage(`{"text": `)
	noTime := *h.qA
	noTime.At = time.Time{}
	unknown := *h.qA
	unknown.Type = "exploded"

	for name, e := range map[string]*event.Event{
		"UnresolvedClaimCheck": &claim, "NotAnObject": &notObject, "BrokenJSON": &broken,
		"NoTime": &noTime, "UnknownType": &unknown,
	} {
		err := st.Apply(ctx, []*event.Event{h.qB, e})
		require.ErrorIs(t, err, store.ErrInvalidEvent, name)
		require.ErrorContains(t, err, "store: apply "+string(e.Type)+" for job job-", name)
	}
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, "SELECT count(*) FROM jobs").Scan(&n))
	require.Zero(t, n, "a rejected batch writes nothing")

	// A database error names the event whose write failed, and is not
	// mistaken for a bad event.
	clash := *h.sC
	clash.JobID, clash.RequestID = "job-z", "req-a" // req-a belongs to job-a
	require.NoError(t, st.Apply(ctx, []*event.Event{h.qA, h.sA}))
	err := st.Apply(ctx, []*event.Event{&clash})
	require.ErrorContains(t, err, "store: apply submitted for job job-z")
	require.False(t, errors.Is(err, store.ErrInvalidEvent))
}

// The write skew the advisory locks exist for: submitted and a completed
// without job id for the same request, in flight at the same time. Each
// alone would see nothing of the other and the transcript would never be
// linked. A table lock held by the test pauses the first transaction after
// its reads, while the second one runs.
func TestApplyRacingSubmittedAndCompletedStillLink(t *testing.T) {
	t.Parallel()
	h := newHistory()
	tests := []struct {
		name          string
		pause         string // table whose writes the first event stalls on
		first, second *event.Event
	}{
		{name: "CompletedFirst", pause: "transcripts", first: h.cC, second: h.sC},
		{name: "SubmittedFirst", pause: "job_events", first: h.sC, second: h.cC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := openStore(t)
			pool := st.Pool()
			require.NoError(t, st.Apply(ctx, []*event.Event{h.qC}))
			waiting := func() int {
				var n int
				require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n))
				return n
			}

			blocker, err := pool.Begin(ctx)
			require.NoError(t, err)
			_, err = blocker.Exec(ctx, "LOCK TABLE "+tt.pause+" IN SHARE MODE")
			require.NoError(t, err)
			first, second := make(chan error, 1), make(chan error, 1)
			go func() { first <- st.Apply(ctx, []*event.Event{tt.first}) }()
			require.Eventually(t, func() bool { return waiting() == 1 }, 10*time.Second, 5*time.Millisecond)
			go func() { second <- st.Apply(ctx, []*event.Event{tt.second}) }()
			// With the locks the second waits for the first; without, it
			// runs to completion on a view that misses the first.
			require.Eventually(t, func() bool { return waiting() == 2 || len(second) == 1 }, 10*time.Second, 5*time.Millisecond)
			require.NoError(t, blocker.Rollback(ctx))
			require.NoError(t, <-first)
			require.NoError(t, <-second)

			var state string
			var linked *string
			require.NoError(t, pool.QueryRow(ctx, "SELECT state FROM jobs WHERE job_id = 'job-c'").Scan(&state))
			require.NoError(t, pool.QueryRow(ctx, "SELECT job_id FROM transcripts WHERE request_id = 'req-c'").Scan(&linked))
			require.Equal(t, "completed", state)
			require.NotNil(t, linked)
			require.Equal(t, "job-c", *linked)
		})
	}
}

// BenchmarkApplyBatch measures the sink's shape: batches of 200 events, each
// job's queued, submitted and completed spread over the stream.
func BenchmarkApplyBatch(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.NewDB(b), nil)
	require.NoError(b, err)
	defer st.Close()
	h := newHistory()
	var evs []*event.Event
	for i := range b.N * 200 / 3 {
		id, req := fmt.Sprintf("bench-%d", i), fmt.Sprintf("breq-%d", i)
		q, s, c := *h.qA, *h.sA, *h.cA
		job := *h.qA.Job
		job.JobID = id
		q.JobID, q.Job = id, &job
		s.JobID, s.RequestID = id, req
		c.JobID, c.RequestID = id, req
		evs = append(evs, &q, &s, &c)
	}
	b.ResetTimer()
	for i := 0; i < len(evs); i += 200 {
		require.NoError(b, st.Apply(ctx, evs[i:min(i+200, len(evs))]))
	}
	b.ReportMetric(float64(len(evs))/b.Elapsed().Seconds(), "events/s")
}

// Words are taken from the payload by Postgres; a payload without a words
// array still stores an empty one.
func TestApplyStoresEmptyWordsWhenThePayloadHasNone(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	for i, tr := range []string{`{"text":"x","language_code":"en"}`, `{"text":"x","words":null}`} {
		req := fmt.Sprintf("req-nowords-%d", i)
		e := &event.Event{V: event.Version, Type: event.TypeCompleted, JobID: fmt.Sprintf("job-nowords-%d", i),
			RequestID: req, At: at(i), Transcription: json.RawMessage(tr)}
		require.NoError(t, st.Apply(ctx, []*event.Event{e}), tr)
		var words string
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT words::text FROM transcripts WHERE request_id = $1`, req).Scan(&words))
		require.Equal(t, "[]", words, tr)
	}
}
