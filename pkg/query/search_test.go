package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/store"
)

// line is what one speaker says, one word every 0.5 s from start.
type line struct {
	speaker string
	start   float64
	text    string
}

// transcription renders lines as an ElevenLabs transcription: words 0.4 s
// long, 0.1 s apart, separated by spacing.
func transcription(lang string, lines ...line) json.RawMessage {
	type word struct {
		Text    string  `json:"text"`
		Type    string  `json:"type"`
		Start   float64 `json:"start"`
		End     float64 `json:"end"`
		Speaker string  `json:"speaker_id,omitempty"`
		Logprob float64 `json:"logprob"`
	}
	var words []word
	var texts []string
	end := 0.0
	for _, l := range lines {
		for i, w := range strings.Fields(l.text) {
			at := l.start + float64(i)*0.5
			if len(words) > 0 {
				words = append(words, word{Text: " ", Type: "spacing", Start: at, End: at, Speaker: l.speaker})
			}
			words = append(words, word{Text: w, Type: "word", Start: at, End: at + 0.4, Speaker: l.speaker})
			end = at + 0.4
		}
		texts = append(texts, l.text)
	}
	b, err := json.Marshal(map[string]any{"language_code": lang, "language_probability": 0.9,
		"text": strings.Join(texts, " "), "words": words, "audio_duration_secs": end})
	if err != nil {
		panic(err)
	}
	return b
}

// corpusJob is one job of a seeded corpus; without lines it stays queued.
type corpusJob struct {
	id, batch, batchName, lang string
	metadata                   map[string]string
	queued                     time.Time
	duration                   float64
	price                      *event.Pricing
	failed                     string
	lines                      []line
}

func seedCorpus(t testing.TB, jobs ...corpusJob) (*query.DB, *store.Store) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	st, err := store.Open(ctx, url, nil)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	var evs []*event.Event
	for _, j := range jobs {
		evs = append(evs, &event.Event{V: 1, Type: event.TypeQueued, JobID: j.id, At: j.queued, Job: &event.Job{
			V: 1, JobID: j.id, BatchID: j.batch, BatchName: j.batchName, Metadata: j.metadata, Pricing: j.price,
			Source:  event.Source{Object: "sha-" + j.id, Path: "/audio/" + j.id + ".wav", Name: j.id + ".wav", DurationSecs: j.duration},
			Options: event.Options{Model: "scribe_v2"}}})
		switch {
		case j.failed != "":
			evs = append(evs, &event.Event{V: 1, Type: event.TypeFailed, JobID: j.id, At: j.queued.Add(time.Minute), Error: j.failed})
		case j.lines != nil:
			req := "req-" + j.id
			evs = append(evs,
				&event.Event{V: 1, Type: event.TypeSubmitted, JobID: j.id, RequestID: req, At: j.queued.Add(time.Second)},
				&event.Event{V: 1, Type: event.TypeCompleted, JobID: j.id, RequestID: req, At: j.queued.Add(time.Minute),
					Transcription: transcription(j.lang, j.lines...)})
		}
	}
	require.NoError(t, st.Apply(ctx, evs))
	db, err := query.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return db, st
}

var t0 = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

func searchCorpus(t *testing.T) *query.DB {
	db, _ := seedCorpus(t,
		corpusJob{id: "en-1", batch: "b-en", batchName: "calls", lang: "eng", metadata: map[string]string{"team": "sales"},
			queued: t0, lines: []line{
				{"speaker_0", 0, "Sorry, we are running late for the quarterly review."},
				{"speaker_1", 5, "No problem. The quick brown fox report is ready."},
				// 1.5 s pause from 9.9 s: a new chunk.
				{"speaker_1", 11.5, "Quick thinking helped: the quick fox sold more than the slow dog."},
			}},
		corpusJob{id: "en-2", batch: "b-en", batchName: "calls", lang: "en", metadata: map[string]string{"team": "support"},
			queued: t0.Add(time.Hour), lines: []line{
				{"speaker_0", 0, "I run every morning and I ran yesterday."},
			}},
		corpusJob{id: "fr-1", batch: "b-fr", batchName: "réunions", lang: "fra", queued: t0.Add(2 * time.Hour), lines: []line{
			{"speaker_0", 0, "Les chanteurs chantaient une chanson magnifique hier soir."},
		}},
		corpusJob{id: "de-1", batch: "b-fr", lang: "deu", queued: t0.Add(3 * time.Hour), lines: []line{
			{"speaker_0", 0, "Die Häuser am Fluss sind groß und alt."},
		}},
		corpusJob{id: "ja-1", lang: "jpn", queued: t0.Add(4 * time.Hour), lines: []line{
			{"speaker_0", 0, "running running running"},
		}},
	)
	return db
}

func jobIDs(hits []query.Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.JobID)
	}
	return out
}

func TestSearchLanguagesAndTimes(t *testing.T) {
	t.Parallel()
	db := searchCorpus(t)
	ctx := context.Background()

	// English stemming: "running" and "run" are one lexeme in English
	// transcripts; the Japanese one is matched with simple, exactly.
	hits, err := db.Search(ctx, "running", query.Filter{}, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"en-1", "en-2", "ja-1"}, jobIDs(hits))
	hits, err = db.Search(ctx, "run", query.Filter{}, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"en-1", "en-2"}, jobIDs(hits), "equal ranks, by job id; simple has no 'run'")
	require.Equal(t, hits[0].Rank, hits[1].Rank, "'ran' is not 'run' to the English stemmer")

	en1 := hits[0]
	require.Equal(t, "req-en-1", en1.RequestID)
	require.Equal(t, "en-1.wav", en1.Name)
	require.Equal(t, "calls", en1.BatchName)
	require.Equal(t, "eng", en1.Language)
	require.Equal(t, "speaker_0", en1.Speaker)
	require.Zero(t, en1.ChunkStart)
	require.InDelta(t, 1.5, en1.Start, 1e-6, "'running' is the fourth word of its chunk")
	require.InDelta(t, 4.4, en1.End, 1e-6)
	require.Contains(t, en1.Snippet, query.SnippetStart+"running"+query.SnippetStop)

	// A French word finds the French transcript through French stemming.
	hits, err = db.Search(ctx, "chanter", query.Filter{}, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"fr-1"}, jobIDs(hits))
	require.InDelta(t, 1.0, hits[0].Start, 1e-6, "chantaient, the third word")
	require.Equal(t, "réunions", hits[0].BatchName)
	hits, err = db.Search(ctx, "haus", query.Filter{}, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"de-1"}, jobIDs(hits), "Häuser in German")
}

func TestSearchSyntax(t *testing.T) {
	t.Parallel()
	db := searchCorpus(t)
	ctx := context.Background()

	// A phrase matches only where its words are adjacent, and the hit
	// starts at the phrase, not at an earlier "quick" in the same chunk.
	hits, err := db.Search(ctx, `"quick fox"`, query.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	h := hits[0]
	require.Equal(t, "en-1", h.JobID)
	require.Equal(t, "speaker_1", h.Speaker)
	require.InDelta(t, 11.5, h.ChunkStart, 1e-6)
	require.InDelta(t, 11.5+4*0.5, h.Start, 1e-6, "the second quick, fifth word of the chunk")
	require.Contains(t, h.Snippet, query.SnippetStart+"quick"+query.SnippetStop+" "+query.SnippetStart+"fox"+query.SnippetStop)

	// Without quotes both chunks with quick and fox match.
	hits, err = db.Search(ctx, `quick fox`, query.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, hits, 2)

	// Negation: the chunk with "brown" goes, and the negated word is not
	// highlighted where it does appear.
	hits, err = db.Search(ctx, `quick -brown`, query.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.InDelta(t, 11.5, hits[0].ChunkStart, 1e-6)
	hits, err = db.Search(ctx, `quick -elephant`, query.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, hits, 2)
	hits, err = db.Search(ctx, `fox -slow`, query.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.InDelta(t, 5, hits[0].ChunkStart, 1e-6)

	// OR across languages: each transcript in its own configuration.
	hits, err = db.Search(ctx, `fox or chanson`, query.Filter{}, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"en-1", "en-1", "fr-1"}, jobIDs(hits))

	// Ranking: more of the query in a chunk ranks it higher; the order is
	// by rank, then job and position.
	hits, err = db.Search(ctx, `quick or fox`, query.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, hits, 2)
	require.InDelta(t, 11.5, hits[0].ChunkStart, 1e-6, "quick ×2 and fox beat quick and fox")
	require.Greater(t, hits[0].Rank, hits[1].Rank)
	require.InDelta(t, 11.5, hits[0].Start, 1e-6, "the first Quick of the chunk")

	for _, q := range []string{"", "   ", "!!! ...", "-fox", "-fox -dog"} {
		_, err := db.Search(ctx, q, query.Filter{}, 10)
		require.ErrorIs(t, err, query.ErrEmptyQuery, "%q", q)
	}
	_, err = db.Search(ctx, "-fox", query.Filter{}, 10)
	require.ErrorContains(t, err, "only excludes words")
}

func TestSearchStopWordsOnly(t *testing.T) {
	t.Parallel()
	db, _ := seedCorpus(t, corpusJob{id: "en", lang: "en", queued: t0, lines: []line{{"s", 0, "the cat and the hat"}}})
	ctx := context.Background()
	_, err := db.Search(ctx, "the and", query.Filter{}, 10)
	require.ErrorIs(t, err, query.ErrEmptyQuery)
	require.ErrorContains(t, err, "stop words")
	hits, err := db.Search(ctx, "the cat", query.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.InDelta(t, 0.5, hits[0].Start, 1e-6, "the stop word is not what was found")

	// No transcripts at all: nothing found, no error.
	empty, _ := seedCorpus(t)
	hits, err = empty.Search(ctx, "cat", query.Filter{}, 10)
	require.NoError(t, err)
	require.Empty(t, hits)
}

func TestSearchFilters(t *testing.T) {
	t.Parallel()
	db := searchCorpus(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		f    query.Filter
		want []string
	}{
		{"Batch", query.Filter{BatchID: "b-en"}, []string{"en-1", "en-2"}},
		{"BatchName", query.Filter{BatchName: "calls"}, []string{"en-1", "en-2"}},
		{"Metadata", query.Filter{Metadata: map[string]string{"team": "support"}}, []string{"en-2"}},
		{"LanguageISO1MatchesISO3", query.Filter{Language: "en"}, []string{"en-1", "en-2"}},
		{"LanguageByName", query.Filter{Language: "English"}, []string{"en-1", "en-2"}},
		{"LanguageWithoutConfig", query.Filter{Language: "jpn"}, []string{"ja-1"}},
		{"Since", query.Filter{Since: t0.Add(30 * time.Minute)}, []string{"en-2", "ja-1"}},
		{"Until", query.Filter{Until: t0.Add(30 * time.Minute)}, []string{"en-1"}},
		{"JobIDs", query.Filter{JobIDs: []string{"ja-1", "fr-1"}}, []string{"ja-1"}},
		{"States", query.Filter{States: []string{"failed"}}, nil},
	} {
		hits, err := db.Search(ctx, "running", tt.f, 10)
		require.NoError(t, err, tt.name)
		require.ElementsMatch(t, tt.want, jobIDs(hits), tt.name)
	}
	_, err := db.Search(ctx, "running", query.Filter{States: []string{"done"}}, 10)
	require.ErrorContains(t, err, `unknown state "done"`)
}

// One job that says the words in every chunk does not take every place.
func TestSearchHitsPerJob(t *testing.T) {
	t.Parallel()
	var lines []line
	for i := range 6 {
		lines = append(lines, line{"s", float64(i) * 10, fmt.Sprintf("budget item %d", i)})
	}
	db, _ := seedCorpus(t,
		corpusJob{id: "long", lang: "en", queued: t0, lines: lines},
		corpusJob{id: "short", lang: "en", queued: t0, lines: []line{{"s", 0, "the budget"}}})
	hits, err := db.Search(context.Background(), "budget", query.Filter{}, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"long", "long", "long", "short"}, jobIDs(hits))
	hits, err = db.Search(context.Background(), "budget", query.Filter{}, 2)
	require.NoError(t, err)
	require.Len(t, hits, 2)

	// Past SearchCandidates matches, only that many are ranked, after the
	// filter: the filter still finds its job.
	db.SetSearchCandidates(2)
	hits, err = db.Search(context.Background(), "budget", query.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, hits, 2)
	hits, err = db.Search(context.Background(), "budget", query.Filter{JobIDs: []string{"short"}}, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"short"}, jobIDs(hits))
}

// The match is answered from the GIN index for every configuration in
// use, filters or not.
func TestSearchUsesIndex(t *testing.T) {
	t.Parallel()
	db := searchCorpus(t)
	ctx := context.Background()
	// english 'run' | 'chanter', french 'running' | 'chant', german and
	// simple 'running' | 'chanter': three different queries, three scans
	// (Postgres merges the identical ones).
	plan, err := db.ExplainSearch(ctx, "running or chanter", query.Filter{}, "", true)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(plan, "Bitmap Index Scan on transcript_chunks_tsv_idx"), plan)
	require.NotContains(t, plan, "Seq Scan on transcript_chunks", plan)
	plan, err = db.ExplainSearch(ctx, "fox", query.Filter{BatchName: "calls", Language: "en"}, "", true)
	require.NoError(t, err)
	require.Contains(t, plan, "Bitmap Index Scan on transcript_chunks_tsv_idx", plan)
	require.NotContains(t, plan, "Seq Scan on transcript_chunks", plan)
}
