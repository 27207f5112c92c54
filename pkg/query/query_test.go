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

func TestMain(m *testing.M) { pgtest.Main(m) }

func seed(t *testing.T) (*query.DB, string) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	st, err := store.Open(ctx, url, nil)
	require.NoError(t, err)
	defer st.Close()
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	job := func(id, path string) *event.Job {
		return &event.Job{V: 1, JobID: id, Source: event.Source{Object: "o-" + id, Path: path}, Options: event.Options{Model: "scribe_v2"}}
	}
	require.NoError(t, st.Apply(ctx, []*event.Event{
		{V: 1, Type: event.TypeQueued, JobID: "j1", Job: job("j1", "/a/one.wav"), At: at},
		{V: 1, Type: event.TypeSubmitted, JobID: "j1", RequestID: "r1", TranscriptionID: "t1", At: at.Add(time.Second)},
		{V: 1, Type: event.TypeCompleted, JobID: "j1", RequestID: "r1", At: at.Add(2 * time.Second),
			Transcription: json.RawMessage(`{"language_code":"en","language_probability":0.9,"text":"hello there","words":[{"text":"hello","type":"word","logprob":0}],"audio_duration_secs":1.5}`)},
		{V: 1, Type: event.TypeQueued, JobID: "j2", Job: job("j2", "/a/two.wav"), At: at},
		{V: 1, Type: event.TypeFailed, JobID: "j2", Error: "422 bad", At: at.Add(time.Second)},
		{V: 1, Type: event.TypeQueued, JobID: "j3", Job: job("j3", "/a/three.wav"), At: at},
	}))
	db, err := query.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return db, url
}

func TestStatusAndShow(t *testing.T) {
	t.Parallel()
	db, _ := seed(t)
	ctx := context.Background()
	counts, err := db.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"queued": 1, "submitted": 0, "completed": 1, "failed": 1, "canceled": 0}, counts)

	for _, key := range []string{"j1", "r1", "/a/one.wav"} {
		j, err := db.Show(ctx, key, false)
		require.NoError(t, err, key)
		require.Equal(t, "j1", j.JobID)
		require.Equal(t, "completed", j.State)
		require.NotNil(t, j.Transcript)
		require.Equal(t, "hello there", j.Transcript.Text)
		require.Empty(t, j.Transcript.Words, "words only when asked")
		require.Len(t, j.History, 3)
		require.Equal(t, "completed", j.History[2].To)
	}
	j, err := db.Show(ctx, "j1", true)
	require.NoError(t, err)
	require.JSONEq(t, `[{"text":"hello","type":"word","logprob":0}]`, string(j.Transcript.Words))

	j, err = db.Show(ctx, "/a/two.wav", false)
	require.NoError(t, err)
	require.Equal(t, "failed", j.State)
	require.Equal(t, "422 bad", *j.Error)
	require.Nil(t, j.Transcript)

	_, err = db.Show(ctx, "nope", false)
	require.ErrorIs(t, err, query.ErrNotFound)

	pending, err := db.Pending(ctx, []string{"j1", "j2", "j3", "not-yet-recorded"})
	require.NoError(t, err)
	require.EqualValues(t, 2, pending)
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	_, url := seed(t)
	db, err := query.Open(context.Background(), url)
	require.NoError(t, err)
	defer db.Close()
	require.Error(t, db.Exec(context.Background(), `DELETE FROM jobs`), "query connections cannot write")
}
