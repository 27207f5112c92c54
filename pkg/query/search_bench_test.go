package query_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/query"
)

var (
	benchTranscripts = flag.Int("search.transcripts", 100_000, "transcripts BenchmarkSearch seeds")
	benchSamples     = flag.Int("search.samples", 100, "searches BenchmarkSearch times per kind of query")
	benchExplain     = flag.Bool("search.explain", false, "BenchmarkSearch logs EXPLAIN ANALYZE of each kind's first query")
)

// BenchmarkSearch seeds a corpus and reports how long Search takes on it.
// It is slow (minutes at the default size) and is only run when asked:
//
//	go test -run '^$' -bench BenchmarkSearch -benchtime 1x ./pkg/query/
//	go test -run '^$' -bench BenchmarkSearch -benchtime 1x ./pkg/query/ -search.transcripts 10000
//
// The corpus: -search.transcripts transcripts of 200 to 400 words each in
// chunks of 30 to 70 words (as the store cuts them), two speakers taking
// turns, 85% English, 10% French, 5% with no configuration (simple). Words
// are drawn from a 50,000-word vocabulary with a Zipf distribution
// (s = 1.05): English stop words take some of the top ranks, so the most
// frequent content word is in about half of the chunks while most words
// are rare. Ten two-word phrases of common words are planted in 0.1% of
// chunks each. The transcripts table gets no words array (search never
// reads it), so seeding writes the chunks, not 3 GB of JSON.
//
// It reports p50 and p95 latency over -search.samples searches (limit 20)
// of each kind, cycling through several terms of the kind so that no one
// query's pages alone stay cached:
//
//   - very common: the 10 most frequent content words (35–60% of chunks);
//   - common: content words of rank 100–120 (about 2.5% of chunks);
//   - rare: words of rank 20,000–20,100 (a few dozen chunks);
//   - phrase: the planted phrases, quoted;
//   - common+batch: common words, filtered to one batch of 10.
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	url := pgtest.NewDB(b)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(b, err)
	defer pool.Close()

	c := newBenchCorpus(*benchTranscripts)
	start := time.Now()
	c.seed(ctx, b, pool)
	seeding := time.Since(start)
	var chunks, size int64
	require.NoError(b, pool.QueryRow(ctx, `SELECT count(*), pg_total_relation_size('transcript_chunks') FROM transcript_chunks`).
		Scan(&chunks, &size))
	b.Logf("seeded %d transcripts, %d chunks (%.0f MB with indexes) in %s", c.n, chunks, float64(size)/1e6, seeding.Round(time.Second))
	b.ReportMetric(seeding.Seconds(), "seed-s")

	db, err := query.Open(ctx, url)
	require.NoError(b, err)
	defer db.Close()

	kinds := []struct {
		name    string
		queries []string
		filter  query.Filter
	}{
		{name: "very-common", queries: c.words(c.content[:10])},
		{name: "common", queries: c.words(c.content[100:120])},
		{name: "rare", queries: c.words(c.vocab[20000:20100])},
		{name: "phrase", queries: c.phraseQueries()},
		{name: "common+batch", queries: c.words(c.content[100:120]), filter: query.Filter{BatchID: "batch-3"}},
	}
	b.ResetTimer()
	for _, k := range kinds {
		// One untimed pass warms the plan cache and the index's upper pages.
		_, err := db.Search(ctx, k.queries[0], k.filter, 20)
		require.NoError(b, err)
		var times []time.Duration
		var hits int
		for i := range *benchSamples {
			q := k.queries[i%len(k.queries)]
			t := time.Now()
			found, err := db.Search(ctx, q, k.filter, 20)
			times = append(times, time.Since(t))
			require.NoError(b, err, q)
			hits += len(found)
		}
		slices.Sort(times)
		p50, p95 := percentile(times, 50), percentile(times, 95)
		var matched int64
		require.NoError(b, pool.QueryRow(ctx, `SELECT count(*) FROM transcript_chunks
			WHERE tsv @@ websearch_to_tsquery(ts_config::regconfig, $1)`, k.queries[0]).Scan(&matched))
		b.Logf("%-13s p50 %7.1f ms  p95 %7.1f ms  (%d searches, %.1f hits each; %q matches %d chunks)",
			k.name, ms(p50), ms(p95), len(times), float64(hits)/float64(len(times)), k.queries[0], matched)
		if *benchExplain {
			plan, err := db.ExplainSearch(ctx, k.queries[0], k.filter, "ANALYZE, BUFFERS", false)
			require.NoError(b, err)
			fmt.Printf("plan of %s (%q):\n%s\n\n", k.name, k.queries[0], plan)
		}
		b.ReportMetric(ms(p50), k.name+"-p50-ms")
		b.ReportMetric(ms(p95), k.name+"-p95-ms")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentile(sorted []time.Duration, p int) time.Duration {
	i := int(math.Ceil(float64(p)/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// benchCorpus generates the benchmark's transcripts deterministically.
type benchCorpus struct {
	n       int
	vocab   []string // by frequency rank
	content []string // vocab without the stop words, by rank
	cdf     []float64
	phrases [][2]string
}

// stopWords are English stop words placed at the top ranks, as in speech.
var stopWords = []string{"the", "i", "and", "to", "a", "you", "that", "it", "of", "is", "in", "we", "so", "but", "was",
	"this", "they", "have", "do", "be", "for", "on", "with", "what", "are", "not", "just", "at", "my", "if"}

func newBenchCorpus(n int) *benchCorpus {
	const size, s = 50_000, 1.05
	rng := rand.New(rand.NewPCG(1, 2))
	syllables := strings.Fields("ba be bi bo bu da de di do du fa fe fi fo ka ke ki ko ku la le li lo lu ma me mi mo mu " +
		"na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za ze zi zo " +
		"bar ken dor mil san tor vel gan hur jon")
	c := &benchCorpus{n: n}
	seen := map[string]bool{}
	for _, w := range stopWords {
		seen[w] = true
	}
	stop := 0
	for len(c.vocab) < size {
		// Stop words take the top ten ranks, then every other rank.
		if stop < len(stopWords) && (len(c.vocab) < 10 || len(c.vocab)%2 == 0) {
			c.vocab = append(c.vocab, stopWords[stop])
			stop++
			continue
		}
		var w strings.Builder
		for range 2 + rng.IntN(3) {
			w.WriteString(syllables[rng.IntN(len(syllables))])
		}
		if !seen[w.String()] {
			seen[w.String()] = true
			c.vocab = append(c.vocab, w.String())
			c.content = append(c.content, w.String())
		}
	}
	total := 0.0
	for r := range c.vocab {
		total += 1 / math.Pow(float64(r+1), s)
		c.cdf = append(c.cdf, total)
	}
	for i := range c.cdf {
		c.cdf[i] /= total
	}
	for i := range 10 {
		c.phrases = append(c.phrases, [2]string{c.content[60+2*i], c.content[61+2*i]})
	}
	return c
}

func (c *benchCorpus) word(rng *rand.Rand) string {
	i, _ := slices.BinarySearch(c.cdf, rng.Float64())
	return c.vocab[min(i, len(c.vocab)-1)]
}

func (c *benchCorpus) words(ws []string) []string { return slices.Clone(ws) }

func (c *benchCorpus) phraseQueries() []string {
	var out []string
	for _, p := range c.phrases {
		out = append(out, `"`+p[0]+" "+p[1]+`"`)
	}
	return out
}

// seed writes jobs, transcripts and chunks with COPY, then builds the GIN
// index once (far faster than maintaining it row by row).
func (c *benchCorpus) seed(ctx context.Context, b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	conn, err := pool.Acquire(ctx)
	require.NoError(b, err)
	defer conn.Release()
	exec := func(sql string) {
		_, err := conn.Exec(ctx, sql)
		require.NoError(b, err, sql)
	}
	exec(`SET maintenance_work_mem = '512MB'`)
	exec(`DROP INDEX transcript_chunks_tsv_idx`)
	exec(`CREATE TEMP TABLE chunk_load (request_id text, job_id text, seq int, speaker text, start_s float8, end_s float8,
		text text, word_offsets int[], word_starts real[], ts_config text)`)

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	langs := func(i int) (code, cfg string) {
		switch {
		case i%20 == 0:
			return "jpn", "simple"
		case i%10 == 1:
			return "fra", "french"
		}
		return "eng", "english"
	}
	// Jobs and transcripts.
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"jobs"},
		[]string{"job_id", "batch_id", "request_id", "source", "state", "state_rank", "queued_at", "submitted_at", "completed_at",
			"price_per_hour", "price_multiplier", "currency"},
		pgx.CopyFromSlice(c.n, func(i int) ([]any, error) {
			src, _ := json.Marshal(map[string]any{"object": fmt.Sprintf("%064x", i), "name": fmt.Sprintf("call-%06d.wav", i),
				"path": fmt.Sprintf("/calls/call-%06d.wav", i), "duration_secs": 120})
			at := base.Add(time.Duration(i) * time.Minute)
			return []any{fmt.Sprintf("job-%06d", i), fmt.Sprintf("batch-%d", i%10), fmt.Sprintf("req-%06d", i), string(src),
				"completed", 4, at, at.Add(time.Second), at.Add(time.Minute), 0.4, 1.0, "USD"}, nil
		}))
	require.NoError(b, err)
	exec(`INSERT INTO batches (batch_id, name, created_at) SELECT DISTINCT batch_id, 'batch ' || batch_id, min(queued_at) OVER (PARTITION BY batch_id) FROM jobs`)
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"transcripts"},
		[]string{"request_id", "job_id", "language_code", "language_probability", "audio_duration_secs", "payload", "chunks_version"},
		pgx.CopyFromSlice(c.n, func(i int) ([]any, error) {
			code, _ := langs(i)
			return []any{fmt.Sprintf("req-%06d", i), fmt.Sprintf("job-%06d", i), code, 0.9, 120.0, "{}", 1}, nil
		}))
	require.NoError(b, err)

	// Chunks, generated as COPY consumes them.
	rng := rand.New(rand.NewPCG(3, 4))
	var pending [][]any
	next := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"chunk_load"},
		[]string{"request_id", "job_id", "seq", "speaker", "start_s", "end_s", "text", "word_offsets", "word_starts", "ts_config"},
		pgx.CopyFromFunc(func() ([]any, error) {
			for len(pending) == 0 {
				if next == c.n {
					return nil, nil
				}
				pending = c.transcript(rng, next, langs)
				next++
			}
			row := pending[0]
			pending = pending[1:]
			return row, nil
		}))
	require.NoError(b, err)
	exec(`INSERT INTO transcript_chunks (request_id, job_id, seq, speaker, start_s, end_s, text, word_offsets, word_starts, ts_config, tsv)
		SELECT request_id, job_id, seq, speaker, start_s, end_s, text, word_offsets, word_starts, ts_config,
		       to_tsvector(ts_config::regconfig, text)
		FROM chunk_load`)
	exec(`DROP TABLE chunk_load`)
	exec(`CREATE INDEX transcript_chunks_tsv_idx ON transcript_chunks USING gin (tsv)`)
	exec(`VACUUM ANALYZE`)
}

// transcript returns the chunk rows of transcript i: 200 to 400 words,
// two speakers taking turns, chunks of 30 to 70 words.
func (c *benchCorpus) transcript(rng *rand.Rand, i int, langs func(int) (string, string)) [][]any {
	_, cfg := langs(i)
	req, job := fmt.Sprintf("req-%06d", i), fmt.Sprintf("job-%06d", i)
	words := 200 + rng.IntN(201)
	var rows [][]any
	at := 0.0
	for seq := 0; words > 0; seq++ {
		n := min(words, 30+rng.IntN(41))
		words -= n
		var text strings.Builder
		offsets := make([]int32, 0, n)
		starts := make([]float32, 0, n)
		start := at
		plant := -1
		if rng.IntN(100) == 0 && n > 2 {
			plant = rng.IntN(n - 1) // 1% of chunks hold one of the 10 phrases
		}
		for k := 0; k < n; k++ {
			w := c.word(rng)
			if k == plant {
				p := c.phrases[rng.IntN(len(c.phrases))]
				w = p[0] + " " + p[1]
			}
			if k > 0 {
				text.WriteByte(' ')
			}
			for j, part := range strings.Split(w, " ") {
				if j > 0 {
					text.WriteByte(' ')
				}
				offsets = append(offsets, int32(text.Len()))
				starts = append(starts, float32(at))
				text.WriteString(part)
				at += 0.35
			}
		}
		rows = append(rows, []any{req, job, seq, fmt.Sprintf("speaker_%d", seq%2), start, at - 0.05, text.String(),
			offsets, starts, cfg})
		at += 1.2 // the pause that ended the chunk
	}
	return rows
}
