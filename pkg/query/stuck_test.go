package query_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/store"
)

func TestStuck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	st, err := store.Open(ctx, url, nil)
	require.NoError(t, err)
	defer st.Close()

	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	var evs []*event.Event
	submitted := func(id string, ago time.Duration, dur float64, tid string) {
		job := &event.Job{V: 1, JobID: id, Source: event.Source{URL: "https://example.org/" + id, DurationSecs: dur},
			Options: event.Options{Model: "scribe_v2"}}
		evs = append(evs,
			&event.Event{V: 1, Type: event.TypeQueued, JobID: id, Job: job, At: now.Add(-ago - time.Minute)},
			&event.Event{V: 1, Type: event.TypeSubmitted, JobID: id, RequestID: "r-" + id, TranscriptionID: tid, At: now.Add(-ago)})
	}
	submitted("old", 20*time.Minute, 2, "t-old")
	submitted("edge", 15*time.Minute, 0, "t-edge") // exactly MinAge: due
	submitted("young", 5*time.Minute, 2, "t-young")
	// 3600 s of audio: 6 s + 0.9 s × 3600 = 54m06s before it is due.
	submitted("long-young", 50*time.Minute, 3600, "t-ly")
	submitted("long-due", 55*time.Minute, 3600, "t-ld")
	submitted("noid", 30*time.Minute, 0, "")
	submitted("done", 3*time.Hour, 2, "t-done")
	evs = append(evs,
		&event.Event{V: 1, Type: event.TypeCompleted, JobID: "done", RequestID: "r-done", At: now.Add(-2 * time.Hour),
			Transcription: json.RawMessage(`{"language_code":"en","language_probability":1,"text":"x","words":[]}`)},
		&event.Event{V: 1, Type: event.TypeQueued, JobID: "queued", At: now.Add(-5 * time.Hour), Job: &event.Job{
			V: 1, JobID: "queued", Source: event.Source{URL: "https://example.org/q"}, Options: event.Options{Model: "scribe_v2"}}})
	require.NoError(t, st.Apply(ctx, evs))

	db, err := query.Open(ctx, url)
	require.NoError(t, err)
	defer db.Close()
	f := query.StuckFilter{Now: now, MinAge: 15 * time.Minute, Base: 6 * time.Second, PerAudioSecond: 900 * time.Millisecond}

	ids := func(jobs []query.StuckJob) []string {
		out := make([]string, 0, len(jobs))
		for _, j := range jobs {
			out = append(out, j.JobID)
		}
		return out
	}
	all, err := db.Stuck(ctx, f)
	require.NoError(t, err)
	require.Equal(t, []string{"long-due", "noid", "old", "edge"}, ids(all), "oldest submission first; young and finished jobs left out")
	require.Equal(t, query.StuckJob{
		JobID: "long-due", RequestID: "r-long-due", TranscriptionID: "t-ld",
		SubmittedAt: now.Add(-55 * time.Minute), DurationSecs: 3600,
	}, withUTC(all[0]))
	require.Empty(t, all[1].TranscriptionID)
	require.Zero(t, all[1].DurationSecs)

	// Pages continue after the cursor and end short.
	f.Limit = 3
	page, err := db.Stuck(ctx, f)
	require.NoError(t, err)
	require.Equal(t, []string{"long-due", "noid", "old"}, ids(page))
	f.After = &query.StuckCursor{SubmittedAt: page[2].SubmittedAt, JobID: page[2].JobID}
	page, err = db.Stuck(ctx, f)
	require.NoError(t, err)
	require.Equal(t, []string{"edge"}, ids(page))

	// Later, the young jobs are due too.
	f = query.StuckFilter{Now: now.Add(time.Hour), MinAge: 15 * time.Minute, Base: 6 * time.Second, PerAudioSecond: 900 * time.Millisecond}
	all, err = db.Stuck(ctx, f)
	require.NoError(t, err)
	require.Equal(t, []string{"long-due", "long-young", "noid", "old", "edge", "young"}, ids(all))
}

func withUTC(j query.StuckJob) query.StuckJob {
	j.SubmittedAt = j.SubmittedAt.UTC()
	return j
}
