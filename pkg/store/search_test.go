package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/store"
)

type chunkRow struct {
	RequestID, Text, Config string
	JobID, Speaker          *string
	Channel                 *int
	Seq                     int
	Start, End              *float64
	Offsets                 []int32
	Starts                  []*float32
	Lexemes                 string
}

func chunksOf(t *testing.T, st *store.Store) []chunkRow {
	t.Helper()
	rows, err := st.Pool().Query(context.Background(), `SELECT request_id, seq, job_id, speaker, channel, start_s, end_s,
			text, word_offsets, word_starts, ts_config, array_to_string(tsvector_to_array(tsv), ' ')
		FROM transcript_chunks ORDER BY request_id, seq`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chunkRow, error) {
		var c chunkRow
		err := r.Scan(&c.RequestID, &c.Seq, &c.JobID, &c.Speaker, &c.Channel, &c.Start, &c.End,
			&c.Text, &c.Offsets, &c.Starts, &c.Config, &c.Lexemes)
		return c, err
	})
	require.NoError(t, err)
	return out
}

func ptr[T any](v T) *T { return &v }

// The canonical history leaves search chunks for every transcript with
// words, each in its language's configuration and linked to its job, and
// the batch and price intake sent.
func TestApplyWritesChunksBatchesAndPrices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	applyIn(t, st, newHistory().canonical(), 1)

	require.Equal(t, []chunkRow{
		{RequestID: "req-a", Seq: 0, JobID: ptr("job-a"), Start: ptr(0.0), End: ptr(1.0), Text: "hello world",
			Offsets: []int32{0, 6}, Starts: []*float32{ptr[float32](0), ptr[float32](0.5)}, Config: "english", Lexemes: "hello world"},
		// Multichannel: a chunk per channel; the transcript's language (the
		// most confident channel's, en) names the configuration.
		{RequestID: "req-c", Seq: 0, JobID: ptr("job-c"), Channel: ptr(0), Start: ptr(0.0), End: ptr(0.4), Text: "hallo",
			Offsets: []int32{0}, Starts: []*float32{ptr[float32](0)}, Config: "english", Lexemes: "hallo"},
		{RequestID: "req-c", Seq: 1, JobID: ptr("job-c"), Channel: ptr(1), Start: ptr(0.1), End: ptr(0.3), Text: "hi",
			Offsets: []int32{0}, Starts: []*float32{ptr[float32](0.1)}, Config: "english", Lexemes: "hi"},
	}, chunksOf(t, st))

	var unchunked int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM transcripts WHERE chunks_version IS NULL`).Scan(&unchunked))
	require.Zero(t, unchunked, "req-x has no words, and nothing left to build")

	var name string
	var created time.Time
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT name, created_at FROM batches WHERE batch_id = 'batch-1'`).Scan(&name, &created))
	require.Equal(t, "calls", name)
	require.True(t, at(0).Truncate(time.Microsecond).Equal(created))
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM batches`).Scan(&n))
	require.Equal(t, 1, n, "job-c has no batch")

	var perHour, mult float64
	var currency string
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT price_per_hour, price_multiplier, currency FROM jobs WHERE job_id = 'job-a'`).
		Scan(&perHour, &mult, &currency))
	require.Equal(t, []any{0.4, 1.5, "USD"}, []any{perHour, mult, currency})
	var noPrice *float64
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT price_per_hour FROM jobs WHERE job_id = 'job-b'`).Scan(&noPrice))
	require.Nil(t, noPrice)
}

// A batch's row keeps the earliest queued time and the first name, however
// its jobs' events arrive.
func TestApplyBatchEarliestTimeFirstName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	queued := func(id, batch, name string, sec int) *event.Event {
		return &event.Event{V: 1, Type: event.TypeQueued, JobID: id, At: at(sec), Job: &event.Job{V: 1, JobID: id,
			BatchID: batch, BatchName: name, Source: event.Source{URL: "https://x/" + id}, Options: event.Options{Model: "m"}}}
	}
	require.NoError(t, st.Apply(ctx, []*event.Event{queued("j2", "b", "", 20)}))
	require.NoError(t, st.Apply(ctx, []*event.Event{queued("j1", "b", "night run", 10), queued("j3", "b", "other", 5)}))
	var name *string
	var created time.Time
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT name, created_at FROM batches WHERE batch_id = 'b'`).Scan(&name, &created))
	require.Equal(t, "night run", *name, "first name applied wins")
	require.True(t, at(5).Truncate(time.Microsecond).Equal(created))
}

// A transcript stored without chunks (before migration 00002, or by an
// older binary) gets exactly the chunks the sink would have written when
// migrations next run; with nothing to do, Migrate says nothing about it.
func TestMigrateBuildsMissingChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	st, err := store.Open(ctx, url, nil)
	require.NoError(t, err)
	defer st.Close()
	h := newHistory()
	require.NoError(t, st.Apply(ctx, h.canonical()))
	want := chunksOf(t, st)
	require.Len(t, want, 3)

	_, err = st.Pool().Exec(ctx, `DELETE FROM transcript_chunks; UPDATE transcripts SET chunks_version = NULL`)
	require.NoError(t, err)
	// A leftover chunk of a transcript being rebuilt is replaced.
	_, err = st.Pool().Exec(ctx, `INSERT INTO transcript_chunks (request_id, seq, text, word_offsets, word_starts, ts_config, tsv)
		VALUES ('req-a', 7, 'stale', '{0}', '{0}', 'simple', to_tsvector('simple', 'stale'))`)
	require.NoError(t, err)

	var out strings.Builder
	require.NoError(t, store.Migrate(ctx, url, "up", &out))
	require.Equal(t, "no pending migrations\nbuilt search chunks for 3 transcripts\n", out.String())
	require.Equal(t, want, chunksOf(t, st))
	var unchunked int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM transcripts WHERE chunks_version IS NULL`).Scan(&unchunked))
	require.Zero(t, unchunked)

	out.Reset()
	require.NoError(t, store.Migrate(ctx, url, "up", &out))
	require.Equal(t, "no pending migrations\n", out.String())
}

// Two sinks linking and a migration backfilling at the same time: the
// unlinked transcript's chunks end up with the job either way.
func TestMigrateBackfillThenLink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	st, err := store.Open(ctx, url, nil)
	require.NoError(t, err)
	defer st.Close()
	h := newHistory()
	require.NoError(t, st.Apply(ctx, []*event.Event{h.qC, h.cC}))
	_, err = st.Pool().Exec(ctx, `DELETE FROM transcript_chunks; UPDATE transcripts SET chunks_version = NULL`)
	require.NoError(t, err)
	require.NoError(t, store.Migrate(ctx, url, "up", nil))
	for _, c := range chunksOf(t, st) {
		require.Nil(t, c.JobID, "not linked yet")
	}
	require.NoError(t, st.Apply(ctx, []*event.Event{h.sC}))
	chunks := chunksOf(t, st)
	require.Len(t, chunks, 2)
	for _, c := range chunks {
		require.Equal(t, "job-c", *c.JobID)
	}
}

func TestTextSearchConfig(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	for code, want := range map[string]string{
		"eng": "english", "en": "english", "EN-us": "english", "fra": "french", "fre": "french", "deu": "german",
		"pt_BR": "portuguese", "nob": "norwegian", "hye": "armenian", "yid": "yiddish", "jpn": "simple", "": "simple",
	} {
		var got string
		require.NoError(t, st.Pool().QueryRow(context.Background(), `SELECT text_search_config($1)`, code).Scan(&got))
		require.Equal(t, want, got, code)
	}
}

// wordsJSON builds a transcription from "speaker:text@start-end" entries,
// putting a space between words.
func wordsJSON(lang string, dur float64, entries ...string) json.RawMessage {
	type word struct {
		Text    string   `json:"text"`
		Type    string   `json:"type"`
		Start   *float64 `json:"start,omitempty"`
		End     *float64 `json:"end,omitempty"`
		Speaker string   `json:"speaker_id,omitempty"`
		Logprob float64  `json:"logprob"`
	}
	var words []word
	var text []string
	for i, e := range entries {
		spk, rest, _ := strings.Cut(e, ":")
		w, times, _ := strings.Cut(rest, "@")
		var s, en float64
		if _, err := fmt.Sscanf(times, "%g-%g", &s, &en); err != nil {
			panic(err)
		}
		if i > 0 {
			words = append(words, word{Text: " ", Type: "spacing", Start: &s, End: &s, Speaker: spk})
		}
		typ := "word"
		if strings.HasPrefix(w, "(") {
			typ = "audio_event"
		}
		words = append(words, word{Text: w, Type: typ, Start: &s, End: &en, Speaker: spk, Logprob: -0.5})
		text = append(text, w)
	}
	b, err := json.Marshal(map[string]any{"language_code": lang, "language_probability": 0.99,
		"text": strings.Join(text, " "), "words": words, "audio_duration_secs": dur})
	if err != nil {
		panic(err)
	}
	return b
}

// The documented views return what their comments claim.
func TestViews(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	pool := st.Pool()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	job := func(id string, dur float64, p *event.Pricing) *event.Event {
		return &event.Event{V: 1, Type: event.TypeQueued, JobID: id, At: t0, Job: &event.Job{V: 1, JobID: id,
			BatchID: "b1", BatchName: "morning", Pricing: p,
			Source:  event.Source{Object: "o-" + id, Path: "/rec/" + id + ".zip", Name: id + ".wav", Archive: "/rec/" + id + ".zip", Entry: "in/" + id + ".wav", Format: "wav", Size: 42, DurationSecs: dur},
			Options: event.Options{Model: "scribe_v2"}}}
	}
	price := &event.Pricing{PerHour: 0.4, Multiplier: 1.5, Currency: "USD"}
	require.NoError(t, st.Apply(ctx, []*event.Event{
		job("done", 7.5, price),
		{V: 1, Type: event.TypeSubmitted, JobID: "done", RequestID: "r-done", At: t0.Add(10 * time.Second), ConvertCalls: 2},
		{V: 1, Type: event.TypeCompleted, JobID: "done", RequestID: "r-done", At: t0.Add(70 * time.Second),
			Transcription: wordsJSON("eng", 7.2,
				"speaker_0:Good@0-0.4", "speaker_0:morning,@0.45-0.9", "speaker_0:everyone.@0.95-1.6",
				"speaker_1:Hi!@2.0-2.3", "speaker_1:(laughs)@2.4-3.0", "speaker_1:Thanks.@3.1-3.5",
				"speaker_0:Let's@3.8-4.1", "speaker_0:start.@4.2-4.6",
				"speaker_0:Any@6.0-6.3", "speaker_0:questions?@6.4-7.0")},
		job("waiting", 3600, price),
		job("unpriced", 0, nil),
	}))

	type wordRow struct {
		Seq                int
		Type, Word         string
		Start, End, Logpro float64
		Speaker            string
		Channel            *int
	}
	rows, err := pool.Query(ctx, `SELECT seq, type, word, start_s, end_s, logprob, speaker, channel
		FROM transcript_words WHERE job_id = 'done' ORDER BY seq`)
	require.NoError(t, err)
	words, err := pgx.CollectRows(rows, pgx.RowToStructByPos[wordRow])
	require.NoError(t, err)
	require.Len(t, words, 10, "spacing left out")
	require.Equal(t, wordRow{Seq: 0, Type: "word", Word: "Good", Start: 0, End: 0.4, Logpro: -0.5, Speaker: "speaker_0"}, words[0])
	require.Equal(t, wordRow{Seq: 8, Type: "audio_event", Word: "(laughs)", Start: 2.4, End: 3.0, Logpro: -0.5, Speaker: "speaker_1"}, words[4],
		"seq indexes transcripts.words, spacing included")
	var raw string
	require.NoError(t, pool.QueryRow(ctx, `SELECT t.words->w.seq->>'text' FROM transcript_words w
		JOIN transcripts t USING (request_id) WHERE w.job_id = 'done' AND w.seq = 8`).Scan(&raw))
	require.Equal(t, "(laughs)", raw)

	type segment struct {
		Turn       int
		Speaker    string
		Start, End float64
		Text       string
		Words      int
	}
	rows, err = pool.Query(ctx, `SELECT turn, speaker, start_s, end_s, text, words
		FROM transcript_segments WHERE job_id = 'done' ORDER BY turn`)
	require.NoError(t, err)
	segs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[segment])
	require.NoError(t, err)
	require.Equal(t, []segment{
		{1, "speaker_0", 0, 1.6, "Good morning, everyone.", 3},
		{2, "speaker_1", 2.0, 3.5, "Hi! (laughs) Thanks.", 3},
		// Two chunks (a 1.4 s pause), one turn.
		{3, "speaker_0", 3.8, 7.0, "Let's start. Any questions?", 4},
	}, segs)
	var talk float64
	require.NoError(t, pool.QueryRow(ctx, `SELECT sum(end_s - start_s) FROM transcript_segments
		WHERE request_id = 'r-done' AND speaker = 'speaker_0'`).Scan(&talk))
	require.InDelta(t, 1.6+3.2, talk, 1e-9)

	// A filter on job_id reaches the chunks' index instead of numbering
	// every transcript's turns first.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SET LOCAL enable_seqscan = off`)
	require.NoError(t, err)
	var plan strings.Builder
	rows, err = tx.Query(ctx, `EXPLAIN SELECT * FROM transcript_segments WHERE job_id = 'done'`)
	require.NoError(t, err)
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan.WriteString(line + "\n")
	}
	require.NoError(t, rows.Err())
	require.Contains(t, plan.String(), "transcript_chunks_job_idx", plan.String())
	require.NoError(t, tx.Rollback(ctx))

	type summary struct {
		JobID, BatchID, BatchName, State, Name string
		Path, Archive, Entry, Format, Language *string
		Size                                   *int64
		Audio                                  *float64
		Estimated                              bool
		Wait, Transcribe, Turnaround           *float64
		ConvertCalls, Attempts                 int
		Cost                                   *float64
		Currency                               *string
	}
	rows, err = pool.Query(ctx, `SELECT job_id, batch_id, batch_name, state, name, source_path, archive, entry, format,
			language_code, size_bytes, audio_secs, audio_secs_estimated, wait_secs, transcribe_secs, turnaround_secs,
			convert_calls, attempts, cost::float8, currency
		FROM job_summary ORDER BY job_id`)
	require.NoError(t, err)
	sums, err := pgx.CollectRows(rows, pgx.RowToStructByPos[summary])
	require.NoError(t, err)
	require.Len(t, sums, 3)
	require.Equal(t, summary{JobID: "done", BatchID: "b1", BatchName: "morning", State: "completed", Name: "done.wav",
		Path: ptr("/rec/done.zip"), Archive: ptr("/rec/done.zip"), Entry: ptr("in/done.wav"), Format: ptr("wav"),
		Language: ptr("eng"), Size: ptr[int64](42), Audio: ptr(7.2), Wait: ptr(10.0), Transcribe: ptr(60.0),
		Turnaround: ptr(70.0), ConvertCalls: 2, Cost: ptr(0.0012), Currency: ptr("USD")}, sums[0],
		"ElevenLabs' duration: 7.2 s / 3600 × 0.40 × 1.5")
	require.Equal(t, "unpriced", sums[1].JobID)
	require.Nil(t, sums[1].Audio, "0 means unknown")
	require.Nil(t, sums[1].Cost)
	require.Equal(t, "waiting", sums[2].JobID)
	require.True(t, sums[2].Estimated)
	require.Equal(t, ptr(3600.0), sums[2].Audio)
	require.Equal(t, ptr(0.6), sums[2].Cost, "estimated from intake's reading")
	require.Nil(t, sums[2].Turnaround)

	for _, view := range []string{"transcript_words", "transcript_segments", "job_summary"} {
		var undocumented []string
		rows, err := pool.Query(ctx, `SELECT a.attname FROM pg_attribute a
			WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND col_description(a.attrelid, a.attnum) IS NULL`, view)
		require.NoError(t, err)
		undocumented, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		var comment *string
		require.NoError(t, pool.QueryRow(ctx, `SELECT obj_description($1::regclass)`, view).Scan(&comment))
		require.NotNil(t, comment, view)
		require.Empty(t, undocumented, view)
	}
}
