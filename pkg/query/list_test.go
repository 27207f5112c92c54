package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/store"
)

var usd = &event.Pricing{PerHour: 0.4, Multiplier: 1, Currency: "USD"}

// listCorpus: five jobs with distinct queue times, durations and costs,
// in two batches, in every interesting state.
func listCorpus(t *testing.T) (*query.DB, *store.Store) {
	return seedCorpus(t,
		// completed, 2 words → audio 0.9 s (ElevenLabs' figure, not 600)
		corpusJob{id: "a", batch: "b1", batchName: "calls", lang: "en", queued: t0, duration: 600, price: usd,
			metadata: map[string]string{"team": "sales", "site": "oslo"}, lines: []line{{"s", 0, "hello there"}}},
		corpusJob{id: "b", batch: "b1", batchName: "calls", queued: t0.Add(time.Minute), duration: 3600, price: usd,
			metadata: map[string]string{"team": "sales"}},
		corpusJob{id: "c", batch: "b1", batchName: "calls", queued: t0.Add(2 * time.Minute), duration: 60, price: usd,
			failed: "422 unsupported"},
		corpusJob{id: "d", batch: "b2", batchName: "interviews", lang: "fra", queued: t0.Add(3 * time.Minute), price: usd,
			lines: []line{{"s", 0, "bonjour à tous et merci"}}},
		corpusJob{id: "e", queued: t0.Add(4 * time.Minute), duration: 1800},
	)
}

func ids(rows []query.JobRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.JobID)
	}
	return out
}

func TestJobsRowAndFilters(t *testing.T) {
	t.Parallel()
	db, _ := listCorpus(t)
	ctx := context.Background()

	rows, next, err := db.Jobs(ctx, query.Filter{}, query.Page{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Equal(t, []string{"e", "d", "c", "b", "a"}, ids(rows), "newest first by default")
	a := rows[4]
	require.Equal(t, "b1", a.BatchID)
	require.Equal(t, "calls", a.BatchName)
	require.Equal(t, "completed", a.State)
	require.Equal(t, "a.wav", a.Name)
	require.Equal(t, "/audio/a.wav", a.Path)
	require.Equal(t, "en", a.Language)
	require.InDelta(t, 0.9, *a.DurationSecs, 1e-9)
	require.False(t, a.DurationEstimated)
	require.InDelta(t, 0.9/3600*0.4, *a.Cost, 1e-9)
	require.Equal(t, "USD", a.Currency)
	require.True(t, t0.Equal(*a.QueuedAt))
	require.True(t, t0.Add(time.Minute).Equal(*a.CompletedAt))
	require.Equal(t, "req-a", a.RequestID)
	require.Equal(t, map[string]string{"team": "sales", "site": "oslo"}, a.Metadata)
	b := rows[3]
	require.True(t, b.DurationEstimated)
	require.InDelta(t, 0.4, *b.Cost, 1e-9, "an hour estimated")
	require.Nil(t, b.CompletedAt)
	require.Equal(t, "422 unsupported", rows[2].Error)
	require.InDelta(t, 2.4, *rows[1].DurationSecs, 1e-9, "d: none from intake, the transcript's")
	require.Nil(t, rows[0].Cost, "e: no price")

	for _, tt := range []struct {
		name string
		f    query.Filter
		want []string
	}{
		{"States", query.Filter{States: []string{"queued", "failed"}}, []string{"e", "c", "b"}},
		{"BatchID", query.Filter{BatchID: "b2"}, []string{"d"}},
		{"BatchName", query.Filter{BatchName: "calls"}, []string{"c", "b", "a"}},
		{"Since", query.Filter{Since: t0.Add(3 * time.Minute)}, []string{"e", "d"}},
		{"SinceUntil", query.Filter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []string{"c", "b"}},
		{"Metadata", query.Filter{Metadata: map[string]string{"team": "sales"}}, []string{"b", "a"}},
		{"MetadataAllPairs", query.Filter{Metadata: map[string]string{"team": "sales", "site": "oslo"}}, []string{"a"}},
		{"Language", query.Filter{Language: "eng"}, []string{"a"}},
		{"LanguageFrench", query.Filter{Language: "fr"}, []string{"d"}},
		{"JobIDs", query.Filter{JobIDs: []string{"a", "e", "zzz"}}, []string{"e", "a"}},
		{"Combined", query.Filter{BatchName: "calls", States: []string{"queued"}}, []string{"b"}},
	} {
		rows, _, err := db.Jobs(ctx, tt.f, query.Page{})
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, ids(rows), tt.name)
	}
}

func TestJobsSortAndPages(t *testing.T) {
	t.Parallel()
	db, st := listCorpus(t)
	ctx := context.Background()
	for _, tt := range []struct {
		sort string
		want []string
	}{
		{"", []string{"e", "d", "c", "b", "a"}},
		{"+queued_at", []string{"a", "b", "c", "d", "e"}},
		// b 3600 (est.), e 1800 (est.), c 60 (est.), d 2.4 (actual), a 0.9
		{"duration", []string{"b", "e", "c", "d", "a"}},
		{"+duration", []string{"a", "d", "c", "e", "b"}},
		// only a and d completed; the rest have no completion: last, by job id desc
		{"completed_at", []string{"d", "a", "e", "c", "b"}},
		// b 0.4, c 60 s, d, a; e has no price
		{"cost", []string{"b", "c", "d", "a", "e"}},
		{"name", []string{"a", "b", "c", "d", "e"}},
		{"-name", []string{"e", "d", "c", "b", "a"}},
	} {
		// Every page size walks the same order, each row once.
		for _, size := range []int{1, 2, 5} {
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				require.Less(t, pages, 10, "pages must end")
				rows, next, err := db.Jobs(ctx, query.Filter{}, query.Page{Limit: size, Sort: tt.sort, After: after})
				require.NoError(t, err, tt.sort)
				require.LessOrEqual(t, len(rows), size)
				got = append(got, ids(rows)...)
				if next == "" {
					break
				}
				after = next
			}
			require.Equal(t, tt.want, got, "sort %q, pages of %d", tt.sort, size)
		}
	}

	_, next, err := db.Jobs(ctx, query.Filter{}, query.Page{Limit: 2, Sort: "cost"})
	require.NoError(t, err)
	_, _, err = db.Jobs(ctx, query.Filter{}, query.Page{Limit: 2, Sort: "name", After: next})
	require.True(t, errors.Is(err, query.ErrBadCursor), "a cursor is for its own sort: %v", err)
	_, _, err = db.Jobs(ctx, query.Filter{}, query.Page{After: "garbage!"})
	require.ErrorIs(t, err, query.ErrBadCursor)
	_, _, err = db.Jobs(ctx, query.Filter{}, query.Page{Sort: "size"})
	require.ErrorContains(t, err, `unknown sort "size"`)
	_, _, err = db.Jobs(ctx, query.Filter{}, query.Page{Sort: "--name"})
	require.Error(t, err)

	// A job queued between two pages of the default order (newest first)
	// does not shift the next page.
	rows, next, err := db.Jobs(ctx, query.Filter{}, query.Page{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"e", "d"}, ids(rows))
	require.NoError(t, st.Apply(ctx, []*event.Event{{V: 1, Type: event.TypeQueued, JobID: "new", At: t0.Add(time.Hour),
		Job: &event.Job{V: 1, JobID: "new", Source: event.Source{URL: "https://x/new"}, Options: event.Options{Model: "m"}}}}))
	rows, _, err = db.Jobs(ctx, query.Filter{}, query.Page{Limit: 2, After: next})
	require.NoError(t, err)
	require.Equal(t, []string{"c", "b"}, ids(rows))
}

// Keyset pages stay exact when rows tie on the sort value, across many
// rows, and a deep page costs what the first does (it starts from the
// cursor in the index, not from an offset).
func TestJobsPagesWithTies(t *testing.T) {
	t.Parallel()
	var jobs []corpusJob
	for i := range 57 {
		jobs = append(jobs, corpusJob{id: fmt.Sprintf("j%02d", i), queued: t0.Add(time.Duration(i%4) * time.Minute),
			duration: float64(i % 3)})
	}
	db, _ := seedCorpus(t, jobs...)
	ctx := context.Background()
	for _, sort := range query.SortKeys {
		var got []string
		after := ""
		for {
			rows, next, err := db.Jobs(ctx, query.Filter{}, query.Page{Limit: 10, Sort: sort, After: after})
			require.NoError(t, err)
			got = append(got, ids(rows)...)
			if after = next; after == "" {
				break
			}
		}
		require.Len(t, got, 57, sort)
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		require.Equal(t, 57, len(slices.Compact(sorted)), "no repeats: %s", sort)
	}
}

func TestBatchesAndProgress(t *testing.T) {
	t.Parallel()
	db, _ := listCorpus(t)
	ctx := context.Background()

	batches, err := db.Batches(ctx)
	require.NoError(t, err)
	require.Len(t, batches, 2)
	b2, b1 := batches[0], batches[1]
	require.Equal(t, "b2", b2.BatchID, "newest first")
	require.Equal(t, "interviews", b2.Name)
	require.Equal(t, "b1", b1.BatchID)
	require.True(t, t0.Equal(b1.CreatedAt))
	require.Equal(t, map[string]int64{"queued": 1, "submitted": 0, "completed": 1, "failed": 1, "canceled": 0}, b1.Counts)
	require.EqualValues(t, 3, b1.Total)
	require.InDelta(t, 0.9+3600+60, b1.AudioSecs, 1e-9)
	require.InDelta(t, 0.9/3600*0.4, b1.Cost["USD"], 1e-9, "completed only")
	require.InDelta(t, (0.9+3600)/3600*0.4, b1.EstimatedCost["USD"], 1e-9, "completed and queued, not failed")
	require.True(t, t0.Add(time.Minute).Equal(*b1.LastCompleted))

	p, err := db.BatchProgress(ctx, query.Filter{BatchID: "b1"})
	require.NoError(t, err)
	require.EqualValues(t, 3, p.Total)
	require.EqualValues(t, 2, p.Done)
	require.EqualValues(t, 1, p.Counts["failed"])
	require.True(t, t0.Equal(*p.FirstQueued))
	require.True(t, t0.Add(time.Minute).Equal(*p.LastCompleted))
	require.True(t, t0.Add(3*time.Minute).Equal(*p.LastFinished), "c failed a minute after its queueing")
	require.InDelta(t, 0.9, p.AudioSecsDone, 1e-9)

	p, err = db.BatchProgress(ctx, query.Filter{JobIDs: []string{"nothing"}})
	require.NoError(t, err)
	require.Zero(t, p.Total)
	require.Nil(t, p.FirstQueued)
	require.Len(t, p.Counts, len(query.States))
}

func TestTranscriptsExport(t *testing.T) {
	t.Parallel()
	var jobs []corpusJob
	for i := range 230 { // more than two pages
		j := corpusJob{id: fmt.Sprintf("x%03d", i), batch: "big", lang: "en", queued: t0, lines: []line{{"s", 0, fmt.Sprintf("number %d", i)}}}
		if i%10 == 0 {
			j.lines, j.lang = nil, "" // still queued: no transcript
		}
		jobs = append(jobs, j)
	}
	db, _ := seedCorpus(t, jobs...)
	ctx := context.Background()

	var got []string
	err := db.Transcripts(ctx, query.Filter{BatchID: "big"}, func(r *query.TranscriptRow) error {
		got = append(got, r.JobID)
		if r.JobID == "x001" {
			require.Equal(t, "req-x001", r.RequestID)
			require.Equal(t, "x001.wav", r.Name)
			require.Equal(t, "number 1", r.Text)
			require.Equal(t, "en", r.Language)
			var words []map[string]any
			require.NoError(t, json.Unmarshal(r.Words, &words))
			require.Len(t, words, 3)
			var tr struct {
				Text string `json:"text"`
			}
			require.NoError(t, json.Unmarshal(r.Transcription, &tr))
			require.Equal(t, "number 1", tr.Text, "the transcription as received")
		}
		return nil
	})
	require.NoError(t, err)
	require.Len(t, got, 207)
	require.True(t, slices.IsSorted(got))

	stop := errors.New("enough")
	n := 0
	err = db.Transcripts(ctx, query.Filter{}, func(*query.TranscriptRow) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, n)

	got = nil
	require.NoError(t, db.Transcripts(ctx, query.Filter{JobIDs: []string{"x005", "x010", "x100"}}, func(r *query.TranscriptRow) error {
		got = append(got, r.JobID)
		return nil
	}))
	require.Equal(t, []string{"x005"}, got, "x010 and x100 have no transcript")
}

// retry --batch takes a batch's id or its name.
func TestJobRefsByBatchIDOrName(t *testing.T) {
	t.Parallel()
	db, _ := listCorpus(t)
	ctx := context.Background()
	for _, batch := range []string{"b1", "calls"} {
		refs, err := db.JobRefs(ctx, nil, "failed", batch)
		require.NoError(t, err)
		require.Len(t, refs, 1, batch)
		require.Equal(t, "c", refs[0].JobID)
	}
	refs, err := db.JobRefs(ctx, nil, "failed", "interviews")
	require.NoError(t, err)
	require.Empty(t, refs)
}
