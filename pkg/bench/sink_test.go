//go:build bench

package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/bench"
	"github.com/scribeq/scribeq/pkg/chaos"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/pgtest"
)

func init() { register("sink", benchSink) }

const (
	// sinkEvents completed events wait in EVENTS before the sink starts.
	sinkEvents = 10_000
	// sinkTokens words per transcript: with their spacings about 20 KB of
	// words JSON, some 45 s of speech.
	sinkTokens = 110
	// sinkCopyBatch transcripts are read back and copied per transaction.
	sinkCopyBatch = 1000
)

// benchSink measures part 5: sinkEvents completed events published into
// EVENTS while no sink runs, then a real `scribeq sink` started and timed
// until every transcript is in Postgres; beside it, a raw COPY (pgx
// CopyFrom) of exactly the rows the sink wrote into identical tables in the
// same database: transcripts, jobs, job_events and transcript_chunks (its
// tsv computed by a trigger with the same to_tsvector the sink runs).
func benchSink(t *testing.T) []bench.Row {
	ctx := t.Context()
	bin := chaos.Build(t)
	dbURL := pgtest.NewDB(t)
	c := chaos.Start(t, ctx, chaos.Config{Bin: bin, DatabaseURL: dbURL, Submitters: 1})
	// The sink's durable consumer now exists; stop it so the events wait,
	// and everything else that would compete for the CPU.
	benchStopProcs(t, append([]*chaos.Proc{c.Sink, c.Emulator, c.Ingress}, c.Submitters...)...)

	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("bench: connect to postgres: %v", err)
	}
	t.Cleanup(pool.Close)

	pubStart := time.Now()
	bytesWords, err := sinkPublish(ctx, c.NatsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("published %d completed events (mean words JSON %d bytes) in %s",
		sinkEvents, bytesWords/sinkEvents, time.Since(pubStart).Round(time.Millisecond))

	// The sink, timed from its process start to the last row committed.
	t.Logf("sink run: load %s", loadAvg())
	start := time.Now()
	if err := c.Sink.Start(); err != nil {
		t.Fatal(err)
	}
	perf := benchPerfStart(t, "sink", c.Sink.PID())
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var first time.Duration
	pgPerf := func() {}
	err = chaos.Until(wctx, "bench: all transcripts stored", 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM transcripts`).Scan(&n); err != nil {
			return false, err
		}
		if n > 0 && first == 0 {
			first = time.Since(start)
			pgPerf = benchPerfStart(t, "sink-postgres", sinkBackends(ctx, pool)...)
		}
		return n >= sinkEvents, nil
	})
	sinkTime := time.Since(start)
	sinkCPU := benchCPU(c.Sink.PID())
	perf()
	pgPerf()
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, c.QueueState(ctx), c.Sink.Tail(20))
	}
	counts := sinkCounts(ctx, t, pool, "")
	t.Logf("sink: %s for %d transcripts (first row after %s, sink process CPU %s): %s", sinkTime.Round(time.Millisecond),
		sinkEvents, first.Round(time.Millisecond), sinkCPU, counts)
	benchStopProcs(t, c.Sink)

	// The limit: COPY of the same rows, in transactions of sinkCopyBatch
	// transcripts; only the COPYs and their commits are timed.
	t.Logf("copy run: load %s", loadAvg())
	copyTime, err := sinkCopy(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if got := sinkCounts(ctx, t, pool, "bench_"); got != counts {
		t.Errorf("the COPY wrote %s, the sink %s", got, counts)
	}
	t.Logf("copy: %s", copyTime.Round(time.Millisecond))

	sinkRate := float64(sinkEvents) / sinkTime.Seconds()
	copyRate := float64(sinkEvents) / copyTime.Seconds()
	return []bench.Row{{
		Part:    fmt.Sprintf("5 sink burst %d×20 KB", sinkEvents),
		Figure:  "transcripts/s committed",
		Value:   fmt.Sprintf("%.0f/s", sinkRate),
		Limit:   fmt.Sprintf("%.0f/s", copyRate),
		Ratio:   bench.Pct(sinkRate, copyRate),
		Target:  "≥ 70%",
		Met:     met(sinkRate >= 0.7*copyRate),
		Command: "make bench T=sink",
	}}
}

// sinkCounts describes what a set of tables holds (prefix "" for the
// sink's, "bench_" for the COPY's), so the two can be compared.
func sinkCounts(ctx context.Context, t *testing.T, pool *pgxpool.Pool, prefix string) string {
	t.Helper()
	var tr, jobs, evs, chunks int
	err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM %[1]stranscripts),
		(SELECT count(*) FROM %[1]sjobs WHERE state = 'completed'), (SELECT count(*) FROM %[1]sjob_events),
		(SELECT count(*) FROM %[2]s)`, prefix, map[string]string{"": "transcript_chunks", "bench_": "bench_chunks"}[prefix])).
		Scan(&tr, &jobs, &evs, &chunks)
	if err != nil {
		t.Fatalf("bench: count rows: %v", err)
	}
	return fmt.Sprintf("%d transcripts, %d completed jobs, %d job events, %d chunks", tr, jobs, evs, chunks)
}

// sinkTranscript renders transcript i as the emulator does for a
// 45-second recording without diarization: pseudo-words in sentences of
// 4–11, each followed by a spacing, timed evenly, one speaker.
func sinkTranscript(i int) (json.RawMessage, int) {
	vocab := strings.Fields(`the a river morning quiet archive signal paper window seven green market letter
		station garden light table north winter copper music bridge simple yellow harbor cloud voice record silver
		open measure field orange stone careful engine pocket lantern forest number travel kitchen bright hollow
		meadow thunder velvet candle ladder island anchor button circle distant feather gentle marble needle puzzle
		ribbon saddle timber valley whistle`)
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	type word struct {
		Text      string  `json:"text"`
		Start     float64 `json:"start"`
		End       float64 `json:"end"`
		Type      string  `json:"type"`
		SpeakerID string  `json:"speaker_id"`
		Logprob   float64 `json:"logprob"`
	}
	const slot = 0.4
	tokens := make([]string, 0, sinkTokens)
	left := 0
	for range sinkTokens {
		w := vocab[r.IntN(len(vocab))]
		if left == 0 {
			left = 4 + r.IntN(8)
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		if left--; left == 0 {
			w += "."
		}
		tokens = append(tokens, w)
	}
	words := make([]word, 0, 2*len(tokens))
	for j, tok := range tokens {
		s := float64(j) * slot
		words = append(words, word{tok, sinkRound3(s), sinkRound3(s + 0.85*slot), "word", "speaker_0", -float64(r.IntN(400)) / 10000})
		if j < len(tokens)-1 {
			words = append(words, word{" ", sinkRound3(s + 0.85*slot), sinkRound3(s + slot), "spacing", "speaker_0", 0})
		}
	}
	wj, _ := json.Marshal(words)
	tr, _ := json.Marshal(map[string]any{
		"language_code": "eng", "language_probability": 0.98, "text": strings.Join(tokens, " "),
		"words": json.RawMessage(wj), "transcription_id": fmt.Sprintf("bench-tr-%05d", i),
		"audio_duration_secs": sinkRound3(float64(len(tokens)) * slot),
	})
	return tr, len(wj)
}

func sinkRound3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// sinkPublish puts sinkEvents completed events on EVENTS as the ingress
// would (same subject, message id and shape), asynchronously with a bounded
// window, and returns the total bytes of words JSON.
func sinkPublish(ctx context.Context, url string) (int, error) {
	nc, err := nats.Connect(url, nats.Name("bench-sink-publish"))
	if err != nil {
		return 0, fmt.Errorf("bench: connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return 0, err
	}
	at := time.Now().UTC()
	total := 0
	for i := range sinkEvents {
		tr, n := sinkTranscript(i)
		total += n
		id := fmt.Sprintf("%05d", i)
		ev := &event.Event{
			V: event.Version, Type: event.TypeCompleted, JobID: "bench-job-" + id, RequestID: "bench-req-" + id,
			TranscriptionID: "bench-tr-" + id, At: at.Add(time.Duration(i) * time.Millisecond), Process: "ingress",
			Transcription: tr, WebhookMetadata: json.RawMessage(`{"job_id":"bench-job-` + id + `"}`),
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return 0, err
		}
		if _, err := js.PublishAsync(ev.Type.Subject(), data, jetstream.WithMsgID(ev.MsgID()), jetstream.WithStallWait(time.Minute)); err != nil {
			return 0, fmt.Errorf("bench: publish event %d: %w", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if n := js.PublishAsyncPending(); n > 0 {
		return 0, fmt.Errorf("bench: %d publishes unacknowledged", n)
	}
	info, err := js.Stream(ctx, event.StreamEvents)
	if err != nil {
		return 0, err
	}
	if got := info.CachedInfo().State.Msgs; got < sinkEvents {
		return 0, fmt.Errorf("bench: EVENTS holds %d messages, want %d", got, sinkEvents)
	}
	return total, nil
}

// sinkCopySetup makes the COPY's tables: like the sink's, with their
// indexes, defaults and checks, the chunks' foreign key, and a trigger that
// computes tsv as the sink's INSERT does (COPY cannot evaluate it).
const sinkCopySetup = `
CREATE TABLE bench_jobs (LIKE jobs INCLUDING ALL);
CREATE TABLE bench_transcripts (LIKE transcripts INCLUDING ALL);
CREATE TABLE bench_job_events (LIKE job_events INCLUDING ALL);
CREATE TABLE bench_chunks (LIKE transcript_chunks INCLUDING ALL,
	FOREIGN KEY (request_id) REFERENCES bench_transcripts (request_id) ON DELETE CASCADE);
CREATE FUNCTION bench_chunks_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.tsv := to_tsvector(NEW.ts_config::regconfig, NEW.text);
	RETURN NEW;
END $$;
CREATE TRIGGER bench_chunks_tsv BEFORE INSERT ON bench_chunks FOR EACH ROW EXECUTE FUNCTION bench_chunks_tsv();
`

// sinkCopy copies the sink's rows into the bench_ tables, sinkCopyBatch
// transcripts (with their jobs, job events and chunks) per transaction,
// and returns the time spent in the COPYs and commits only: reading the
// rows back is not part of the limit.
func sinkCopy(ctx context.Context, pool *pgxpool.Pool) (time.Duration, error) {
	if _, err := pool.Exec(ctx, sinkCopySetup); err != nil {
		return 0, fmt.Errorf("bench: create copy tables: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	var spent time.Duration
	after := ""
	for {
		tabs, last, err := sinkReadBatch(ctx, pool, after)
		if err != nil {
			return 0, err
		}
		if last == "" {
			return spent, nil
		}
		after = last
		t0 := time.Now()
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, tb := range tabs {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{tb.name}, tb.cols, pgx.CopyFromRows(tb.rows)); err != nil {
					return fmt.Errorf("bench: copy into %s: %w", tb.name, err)
				}
			}
			return nil
		})
		spent += time.Since(t0)
		if err != nil {
			return 0, err
		}
	}
}

type sinkTable struct {
	name string
	cols []string
	rows [][]any
}

// sinkReadBatch reads the next sinkCopyBatch transcripts after request id
// `after`, with their jobs, job events and chunks, in the order the COPY
// writes them (parents first). last is "" when there are none left.
func sinkReadBatch(ctx context.Context, pool *pgxpool.Pool, after string) (tabs []sinkTable, last string, err error) {
	read := func(name string, cols []string, sql string, args ...any) error {
		rows, err := pool.Query(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("bench: read %s: %w", name, err)
		}
		defer rows.Close()
		tb := sinkTable{name: name, cols: cols}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			// Arrays need typed destinations to be copied back.
			if name == "bench_chunks" {
				var offs []int32
				var starts []pgtype.Float4
				ptrs[8], ptrs[9] = &offs, &starts
				if err := rows.Scan(ptrs...); err != nil {
					return fmt.Errorf("bench: read %s: %w", name, err)
				}
				vals[8], vals[9] = offs, starts
			} else if err := rows.Scan(ptrs...); err != nil {
				return fmt.Errorf("bench: read %s: %w", name, err)
			}
			tb.rows = append(tb.rows, vals)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("bench: read %s: %w", name, err)
		}
		tabs = append(tabs, tb)
		return nil
	}
	// jsonb travels as text: the server parses it, as it does the sink's.
	var ids []string
	if err := pool.QueryRow(ctx, `SELECT coalesce(array_agg(request_id ORDER BY request_id), '{}') FROM
		(SELECT request_id FROM transcripts WHERE request_id > $1 ORDER BY request_id LIMIT $2) s`,
		after, sinkCopyBatch).Scan(&ids); err != nil {
		return nil, "", fmt.Errorf("bench: read transcript ids: %w", err)
	}
	if len(ids) == 0 {
		return nil, "", nil
	}
	steps := []struct {
		name string
		cols []string
		sql  string
	}{
		{"bench_jobs", []string{"job_id", "batch_id", "request_id", "transcription_id", "source", "options", "metadata",
			"state", "state_rank", "error", "attempts", "convert_calls", "completed_at"},
			`SELECT job_id, batch_id, request_id, transcription_id, source::text, options::text, metadata::text,
				state, state_rank, error, attempts, convert_calls, completed_at FROM jobs WHERE request_id = ANY($1)`},
		{"bench_transcripts", []string{"request_id", "job_id", "transcription_id", "language_code", "language_probability",
			"text", "words", "audio_duration_secs", "payload", "received_at", "chunks_version"},
			`SELECT request_id, job_id, transcription_id, language_code, language_probability, text, words::text,
				audio_duration_secs, payload::text, received_at, chunks_version FROM transcripts WHERE request_id = ANY($1)`},
		{"bench_chunks", []string{"request_id", "seq", "job_id", "speaker", "channel", "start_s", "end_s", "text",
			"word_offsets", "word_starts", "ts_config"},
			`SELECT request_id, seq, job_id, speaker, channel, start_s, end_s, text, word_offsets, word_starts, ts_config
				FROM transcript_chunks WHERE request_id = ANY($1)`},
		{"bench_job_events", []string{"job_id", "from_state", "to_state", "reason", "process", "event_key", "at"},
			`SELECT e.job_id, e.from_state, e.to_state, e.reason, e.process, e.event_key, e.at
				FROM job_events e JOIN jobs j USING (job_id) WHERE j.request_id = ANY($1)`},
	}
	for _, s := range steps {
		if err := read(s.name, s.cols, s.sql, ids); err != nil {
			return nil, "", err
		}
	}
	return tabs, ids[len(ids)-1], nil
}

// sinkBackends are the process ids of the Postgres sessions on the
// database other than the harness's: the sink's, to profile the server's
// side of its writes.
func sinkBackends(ctx context.Context, pool *pgxpool.Pool) []int {
	var pids []int
	_ = pool.QueryRow(ctx, `SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&pids)
	return pids
}
