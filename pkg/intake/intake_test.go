package intake_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

func TestJobIDIsStable(t *testing.T) {
	t.Parallel()
	o := event.Options{Model: "scribe_v2", Diarize: true}
	a := intake.JobID("sha256:abc", o, false)
	require.Equal(t, a, intake.JobID("sha256:abc", o, false), "same audio, same options, same id")
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a)
	require.NotEqual(t, a, intake.JobID("sha256:abd", o, false))
	require.NotEqual(t, a, intake.JobID("sha256:abc", event.Options{Model: "scribe_v2"}, false), "options change the id")
	require.NotEqual(t, a, intake.JobID("sha256:abc", o, true), "force makes a new job")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		o    event.Options
		want string
	}{
		{event.Options{Model: "whisper"}, "--model"},
		{event.Options{Timestamps: "second"}, "--timestamps"},
		{event.Options{NumSpeakers: 33}, "--num-speakers"},
		{event.Options{Model: "scribe_v1", Keyterms: []string{"x"}}, "scribe_v2"},
		{event.Options{Keyterms: []string{"a [b]"}}, "--keyterm"},
	} {
		require.ErrorContains(t, intake.Validate(&tt.o), tt.want)
	}
	o := event.Options{}
	require.NoError(t, intake.Validate(&o))
	require.Equal(t, "scribe_v2", o.Model, "default model")
}

func TestSubmit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := natstest.Queue(t, queue.Config{})

	dir := t.TempDir()
	var wav bytes.Buffer
	require.NoError(t, audio.WriteWAV(&wav, 16000, make([]int16, 32000), ""))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub", ".hidden"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "a.wav"), wav.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", ".hidden", "b.wav"), wav.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.mp3"), nil, 0o644))

	in := intake.New(q, nil)
	req := intake.Request{
		Sources: []string{dir, "https://example.org/talk.mp3", "http://example.org/insecure.mp3", filepath.Join(dir, "missing.wav")},
	}
	res, err := in.Submit(ctx, req, nil)
	require.NoError(t, err)
	byStatus := map[intake.Status][]string{}
	for _, r := range res {
		byStatus[r.Status] = append(byStatus[r.Status], filepath.Base(r.Source))
	}
	require.ElementsMatch(t, []string{"a.wav", "talk.mp3"}, byStatus[intake.Queued])
	require.ElementsMatch(t, []string{"notes.txt", "empty.mp3"}, byStatus[intake.Skipped])
	require.ElementsMatch(t, []string{"insecure.mp3", "missing.wav"}, byStatus[intake.Failed])

	// The audio is in the object store under its sha256, with its duration.
	var job *event.Job
	for _, r := range res {
		if filepath.Base(r.Source) == "a.wav" {
			job = findJob(t, q, r.JobID)
		}
	}
	require.NotNil(t, job)
	require.Len(t, job.Source.Object, 64)
	require.InDelta(t, 2.0, job.Source.DurationSecs, 0.01)
	rd, err := q.Audio.Get(ctx, job.Source.Object)
	require.NoError(t, err)
	got, err := io.ReadAll(rd)
	require.NoError(t, err)
	require.Equal(t, wav.Bytes(), got)

	// Again: nothing new is queued.
	res, err = in.Submit(ctx, intake.Request{Sources: []string{filepath.Join(dir, "sub")}}, nil)
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, intake.AlreadySubmitted, res[0].Status)
	// Unless forced.
	res, err = in.Submit(ctx, intake.Request{Sources: []string{filepath.Join(dir, "sub")}, Force: true}, nil)
	require.NoError(t, err)
	require.Equal(t, intake.Queued, res[0].Status)
}

func findJob(t *testing.T, q *queue.Queue, id string) *event.Job {
	t.Helper()
	ctx := context.Background()
	st, err := q.JS.Stream(ctx, event.StreamJobs)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		j, err := event.DecodeJob(m.Data)
		require.NoError(t, err)
		if j.JobID == id {
			return j
		}
	}
	t.Fatalf("job %s not on JOBS", id)
	return nil
}
